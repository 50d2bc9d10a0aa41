"""Redis benchmark: the bot's Redis access pattern under load, through a bounded pool and a breaker.

Modules, one concept each: ``client`` (bounded instrumented pool, command runner), ``breaker``
(circuit breaker), ``faults`` (real failure injection), ``workload`` (mix, keys, values, preload
and cleanup), ``runtime`` (one process's engine and counts), ``user`` (the Locust user, shape and
per-test lifecycle; imports Locust), ``job`` (``perfsuite run --test-type redis``).

Nothing is imported here: ``user`` imports Locust, which monkey-patches the process.
"""

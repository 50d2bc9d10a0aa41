"""The capacity test (``perfsuite run --test-type capacity``): the seed's load progression with real
outages of the bot's dependencies.

Modules, one concept each: :mod:`capacity.plan` (the load over time: the outage phase, then the
steps), :mod:`capacity.faults` (which fault windows run, and where), :mod:`capacity.cells` (figures of
a stretch of the run's seconds), :mod:`capacity.steps` (per-step figures, the knee and capacity
rules, the live early stop), :mod:`capacity.recovery` (outages: success during, recovery time,
backlog), :mod:`capacity.alerts` (live threshold alerts, 4.3), :mod:`capacity.resources` (psutil
and /health sampling in a greenlet), :mod:`capacity.figures` (the typed figures),
:mod:`capacity.report` (report sections) and :mod:`capacity.job` (the test type).
"""

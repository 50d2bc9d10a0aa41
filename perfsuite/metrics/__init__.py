"""Live metrics: an OpenMetrics/Prometheus endpoint for the dashboards users already have.

``perfsuite run --metrics-port 9646`` (or ``perfsuite web``, or ``metrics.port`` in scenarios.yaml,
or ``PERFSUITE_METRICS_PORT``) serves ``http://127.0.0.1:9646/metrics`` while the run goes; off by
default. The endpoint lives in the perfsuite process and reads the collector's Redis, so it costs the
load generators nothing and serves the report's own figures (:mod:`perfsuite.metrics.endpoint`);
``monitoring/`` holds a Grafana dashboard and a Prometheus configuration that use these names.

Labels: ``request_type`` and ``name`` (Locust's; at most 100 distinct pairs, more add up under name
``(other)``), ``outcome``, ``worker`` (a load generator's Locust client id), ``window``, ``quantile``,
``step``, ``alert``, ``severity``, ``source``, ``stage``, ``state``. The run id is a label of
``perfsuite_run_info`` only: counters start again at 0 with each run (a counter reset to
Prometheus). Every label value has credentials and secret-shaped strings removed.

Run
    ``perfsuite_run_info{run_id, test_type, scenario, target}`` (1), ``perfsuite_run_running`` (1/0),
    ``perfsuite_run_start_time_seconds``.
Requests (per ``request_type``, ``name``)
    ``perfsuite_requests_total{outcome}`` (success, rejected: an expected refusal, backpressure,
    failure; the report's totals exactly once the run is final), ``perfsuite_requests_per_second``
    (over the recent ``metrics.window_s``, default 10 s).
Latency (from the merged HDR histograms; open model: from each request's intended start)
    ``perfsuite_request_duration_seconds`` (histogram over the run: exact bucket counts, see
    :mod:`perfsuite.metrics.exposition`), ``perfsuite_request_duration_quantile_seconds{window,
    quantile}`` (per name), ``perfsuite_latency_seconds{window, quantile}`` (every request; ``window
    ="run"``: the report's summary P50/P95/P99; ``window="10s"``: the recent window),
    ``perfsuite_latency_corrected_seconds{quantile}`` (corrected for coordinated omission as the
    report does, :mod:`perfsuite.correction`: open model from the intended start; closed model HDR's
    expected-interval correction of the steady stage), ``perfsuite_latency_expected_interval_seconds``
    (closed model), ``perfsuite_latency_uncorrected_seconds{quantile}`` (open model, from the actual
    send). Quantiles 0.5, 0.95, 0.99.
Load generators
    ``perfsuite_generator_trusted`` (1/0: the report's saturation rule), ``perfsuite_workers{state}``
    (running, lost), per ``worker``: ``perfsuite_worker_up``, ``perfsuite_worker_cpu_percent``,
    ``perfsuite_worker_loop_lag_seconds``, ``perfsuite_worker_saturated``,
    ``perfsuite_worker_requests_total``.
Stage and capacity
    ``perfsuite_stage{stage}`` (1 for the current one), ``perfsuite_load_users``,
    ``perfsuite_load_rate_per_second``, ``perfsuite_capacity_step``, per ``step`` (judged live when it
    ends): ``perfsuite_capacity_step_held``, ``perfsuite_capacity_step_p95_seconds``,
    ``perfsuite_capacity_step_good_requests_per_second``; ``perfsuite_capacity_knee_step``,
    ``perfsuite_capacity_held_load``; live alerts ``perfsuite_alert_firing{alert, severity}``,
    ``perfsuite_alerts_fired_total{alert, severity}``.
The bot and the collector
    ``perfsuite_bot_backlog{source}`` and ``perfsuite_bot_backlog_readable{source}`` (``target.backlog``,
    read every ``metrics.backlog_interval_s``), ``perfsuite_collector_up``,
    ``perfsuite_collector_writers{state}``, ``perfsuite_collector_lag_seconds``.

The figures trail the load by the collector's flush (1-2 s). After the run the endpoint serves the
final figures for ``metrics.linger_s`` (default 5 s), then closes.

Modules: ``live`` (one run read incrementally from Redis), ``recent`` (its last seconds, for the
recent window), ``progress`` (what its marks say), ``exposition`` (the metric families),
``endpoint`` (the server).
"""

from __future__ import annotations

__all__: list[str] = []

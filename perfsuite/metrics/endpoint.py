"""The ``/metrics`` endpoint of one ``perfsuite run`` or ``perfsuite web``: an HTTP server
(prometheus_client's, in a thread of the perfsuite process) serving the run it follows.

Where it lives: in the perfsuite process, the parent of the Locust processes, reading the
collector's Redis; not inside a Locust process. Every process's merged HDR histograms are already
there per second, so one endpoint serves a whole distributed run (local, ``--workers N``, remote
workers) with the report's own figures, and a scrape costs the load generators nothing: no CPU,
no turn of their event loop (the cost is measured in ``bench/bench_metrics.py``). The price: the
figures trail the load by the collector's flush (1-2 s).

- ``perfsuite run``: :meth:`MetricsEndpoint.follow` each run as it starts (``--repeat``, ``all``:
  one after the other, counters starting again at 0), :meth:`~MetricsEndpoint.finished` once its
  data is final;
- ``perfsuite web``: :meth:`~MetricsEndpoint.follow_process` finds each run the web UI starts: the
  newest run whose collector writers include the Locust process this command started (host, pid);
- a scrape reads what is new (:class:`~perfsuite.metrics.live.LiveRun`); once the run is final it
  is served as it is; the bot's backlog is read by a thread of its own (a slow bot never slows a
  scrape);
- :meth:`~MetricsEndpoint.close` keeps the final figures up for ``metrics.linger_s`` after the run's
  data became final (the last scrape sees the totals; it overlaps with the report's writing), then
  shuts the server down and releases the port. After Ctrl-C it closes at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from perfsuite.backlog import BacklogConfig
from perfsuite.backlog.sources import Reader, ReadError, open_readers
from perfsuite.collector.client import REDIS_ERRORS, redis_client
from perfsuite.collector.keys import runs_key, writers_key
from perfsuite.config import MetricsConfig
from perfsuite.correction import Correction
from perfsuite.errors import ConfigError
from perfsuite.metrics.exposition import Extras, data_families, data_key, endpoint_families
from perfsuite.metrics.live import LiveRun

logger = logging.getLogger(__name__)


class BacklogPoller:
    """Reads the bot's backlog sources every ``interval_s`` in a daemon thread; the last values kept."""

    def __init__(self, readers: list[Reader], interval_s: float) -> None:
        self._readers = readers
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.depths: dict[str, int] = {}
        self.readable: dict[str, bool] = {}
        self._thread = threading.Thread(target=self._run, name="perfsuite-metrics-backlog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for reader in self._readers:
                    for name, depth in zip(reader.labels, reader.read(), strict=True):
                        readable = not isinstance(depth, ReadError)
                        self.readable = {**self.readable, name: readable}  # replaced, never mutated
                        if not isinstance(depth, ReadError):
                            self.depths = {**self.depths, name: int(depth)}
                self._stop.wait(self._interval_s)
        except Exception:  # the endpoint serves on without the backlog
            logger.exception("live metrics: the backlog poller stopped")
        finally:
            for reader in self._readers:
                with contextlib.suppress(Exception):
                    reader.close()

    def stop(self) -> None:
        """Stop reading (the last values stay); waits for a read in progress, briefly."""
        self._stop.set()
        self._thread.join(timeout=5.0)


class _Exposition(Collector):
    def __init__(self, endpoint: MetricsEndpoint) -> None:
        self._endpoint = endpoint

    def collect(self) -> Iterator[Metric]:
        return iter(self._endpoint.families())


class MetricsEndpoint:
    """One command's endpoint (see the module docstring); a context manager that closes it."""

    def __init__(
        self,
        settings: MetricsConfig,
        collector_url: str,
        key_prefix: str,
        *,
        max_cpu_percent: float = 90.0,
        max_lag_ms: float = 10.0,
        backlog: BacklogConfig | None = None,
        health_path: str | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.port is None:
            raise ConfigError("metrics.port: not set (the endpoint is off)")
        self.settings = settings
        self._prefix = key_prefix
        self._limits = (float(max_cpu_percent), float(max_lag_ms))
        self._backlog = backlog or BacklogConfig()
        self._health_path = health_path
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._client = redis_client(collector_url)
        self._lock = threading.RLock()
        self._run: LiveRun | None = None
        self._final = False
        self._final_at: float | None = None
        self._collector_up = True
        self._poller: BacklogPoller | None = None
        self._process: tuple[str, int, Correction] | None = None
        """``follow_process``: (host, pid, correction) of the Locust process whose runs are followed."""
        self._since = 0.0
        self._checked: set[str] = set()
        self._run_score = float("-inf")
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._cached: tuple[tuple[object, ...], list[Metric]] | None = None
        self.scrapes = 0
        """Scrapes served so far."""

    # ---------------------------------------------------------------- server

    def start(self) -> MetricsEndpoint:
        """Listen; ConfigError (exit 64) naming the address when the port cannot be taken."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Exposition(self))
        host, port = self.settings.host, int(self.settings.port or 0)
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError(
                f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); choose "
                "another port (metrics.port, PERFSUITE_METRICS_PORT) or free this one"
            ) from None
        return self

    @property
    def port(self) -> int:
        """The port it listens on (the free one picked for port 0)."""
        return int(self._server.server_port) if self._server is not None else 0

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/metrics"

    # ---------------------------------------------------------------- what it follows

    def follow(self, run_id: str, correction: Correction, host: str | None = None) -> None:
        """Serve run ``run_id`` from now on (``correction``: its test's coordinated-omission rule;
        ``host``: the bot's base URL, whose backlog is read)."""
        with self._lock:
            self._switch(run_id, correction)
        self._start_backlog(host)

    def follow_process(self, pid: int, correction: Correction, host: str | None = None) -> None:
        """Serve each run the Locust process ``pid`` (a child of this one) starts, the newest first."""
        with self._lock:
            self._process = (socket.gethostname(), int(pid), correction)
            self._since = time.time() - 5.0
        self._start_backlog(host)

    def finished(self, run_id: str) -> None:
        """Run ``run_id``'s data is final: read it one last time (everything) and serve it as it is."""
        with self._lock:
            run = self._run
            if run is None or run.run_id != run_id:
                return
            try:
                run.refresh(sweep=True)
                self._collector_up = True
            except REDIS_ERRORS as exc:
                self._collector_up = False
                logger.warning("live metrics: the collector's Redis did not answer (%s)", exc)
            self._final, self._final_at = True, self._clock()
        if self._poller is not None:
            self._poller.stop()

    def _switch(self, run_id: str, correction: Correction) -> None:
        self._run = LiveRun(
            self._client,
            self._prefix,
            run_id,
            window_s=self.settings.window_s,
            correction=correction,
            max_cpu_percent=self._limits[0],
            max_lag_ms=self._limits[1],
        )
        self._final, self._final_at = False, None

    def _start_backlog(self, host: str | None) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        if not host:
            return
        health_url = host.rstrip("/") + self._health_path if self._health_path else None
        readers = open_readers(self._backlog, health_url, host, self._environ)
        self._poller = BacklogPoller(readers, self.settings.backlog_interval_s)

    def _discover(self) -> None:
        """``follow_process``: switch to the newest run of that process, if a newer one started."""
        if self._process is None:
            return
        host, pid, correction = self._process
        found: list[tuple[bytes, float]] = self._client.zrangebyscore(  # type: ignore[assignment]
            runs_key(self._prefix), self._since, "+inf", withscores=True
        )
        for member, score in sorted(found, key=lambda item: -item[1]):
            run_id = member.decode() if isinstance(member, bytes) else str(member)
            if score <= self._run_score:
                break
            if run_id in self._checked:
                continue
            records = self._client.hvals(writers_key(self._prefix, run_id))
            if not records:
                continue  # just created: its writer record comes with its first flush
            self._checked.add(run_id)
            if any(_written_by(record, host, pid) for record in records):
                self._run_score = float(score)
                self._switch(run_id, correction)
                return

    # ---------------------------------------------------------------- scraping

    def families(self) -> list[Metric]:
        """What a scrape gets now (reads what is new first, unless the run is final)."""
        with self._lock:
            self.scrapes += 1
            try:
                self._discover()
                run = self._run
                if run is not None and not self._final:
                    run.refresh()
                    if run.complete and self._process is not None:  # web UI: the test ended
                        self._final, self._final_at = True, self._clock()
                self._collector_up = True
            except REDIS_ERRORS as exc:
                self._collector_up = False
                logger.warning("live metrics: the collector's Redis did not answer (%s)", exc)
            poller = self._poller
            extras = Extras(
                collector_up=self._collector_up,
                backlog=dict(poller.depths) if poller else {},
                backlog_readable=dict(poller.readable) if poller else {},
            )
            data = None
            if self._run is not None:
                key = data_key(self._run)
                if self._cached is None or self._cached[0] != key:  # new data since the last scrape
                    self._cached = (key, data_families(self._run))
                data = self._cached[1]
            return list(endpoint_families(self._run, extras, data))

    # ---------------------------------------------------------------- closing

    def close(self, linger: bool = True) -> None:
        """Keep the final figures up until ``linger_s`` after the run's data became final (with
        ``linger``), then stop serving and release the port. Idempotent."""
        if self._server is None:
            return
        try:
            if linger:
                with self._lock:
                    final_at = self._final_at
                    if final_at is None and self._run is not None:
                        with contextlib.suppress(*REDIS_ERRORS):
                            self._run.refresh(sweep=True)
                            if self._run.complete:
                                self._final, final_at = True, self._clock()
                if final_at is not None:
                    left = final_at + self.settings.linger_s - self._clock()
                    if left > 0:
                        time.sleep(left)
        finally:
            server, self._server = self._server, None
            server.shutdown()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5.0)
            if self._poller is not None:
                self._poller.stop()
            self._client.close()

    def __enter__(self) -> MetricsEndpoint:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(linger=exc_type is None)  # Ctrl-C, an error: close at once


def _written_by(record: bytes | str, host: str, pid: int) -> bool:
    """Whether a collector writer record names the process ``pid`` on ``host``."""
    try:
        value = json.loads(record)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("pid") == pid and value.get("host") == host


def open_endpoint(
    settings: MetricsConfig,
    collector_url: str,
    key_prefix: str,
    stack: contextlib.ExitStack,
    **kwargs: Any,
) -> MetricsEndpoint | None:
    """The endpoint when ``settings.port`` is set, listening, closed by ``stack`` (None: off); its
    address is printed."""
    if settings.port is None:
        return None
    endpoint = MetricsEndpoint(settings, collector_url, key_prefix, **kwargs).start()
    stack.push(endpoint)
    print(f"perfsuite: live metrics on {endpoint.url}", flush=True)
    return endpoint


__all__ = ["BacklogPoller", "MetricsEndpoint", "open_endpoint"]

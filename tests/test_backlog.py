"""The backlog watch against real things: the zoo's queueing bot and its Redis list, a stream with a
consumer group, a Prometheus text endpoint, JSON health endpoints, bot processes busy or idle after
the load; and no secret in any message."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from perfsuite.backlog import (
    UNKNOWN,
    Backlog,
    BacklogConfig,
    HealthSource,
    ProcessConfig,
    PrometheusSource,
    RedisKey,
    RedisSource,
    describe_backlog,
    find_process,
    parse_exposition,
    preflight_backlog,
    watch_backlog,
)
from perfsuite.embedded import free_port, start_redis
from perfsuite.errors import ConfigError, ServiceUnavailable
from tests.test_zoo import send, valid_message
from tests.zoo import QUEUE_KEY, ZooBot, start_bot
from tests.zoo.fixtures import ZOO_TOKEN, Zoo

BOT_REDIS = "BOT_REDIS_URL"


def redis_backlog(*keys: RedisKey, poll_s: float = 0.1) -> BacklogConfig:
    """Backlog config reading ``keys`` in the Redis whose URL is in BOT_REDIS_URL."""
    return BacklogConfig(redis=RedisSource(url_env=BOT_REDIS, keys=keys), poll_s=poll_s)


def texts(backlog: Backlog) -> list[str]:
    """The report lines' texts."""
    return [finding.text for finding in describe_backlog(backlog)]


@contextmanager
def slow_queue(redis_url: str, drain_per_s: float) -> Iterator[ZooBot]:
    """The zoo's slow_queue bot on ``redis_url``, draining ``drain_per_s`` messages per second."""
    bot = start_bot(
        "slow_queue", ZOO_TOKEN, redis_url=redis_url, extra_args=("--drain-per-s", str(drain_per_s))
    )
    try:
        yield bot
    finally:
        bot.stop()


@contextmanager
def http_endpoint(answer: Callable[[str], tuple[int, str, str]]) -> Iterator[str]:
    """A stdlib HTTP server on loopback; ``answer(path)`` gives (status, content type, body) per GET.
    Yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, content_type, body = answer(self.path)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


BURN = """
import subprocess, sys, time
seconds, marker, role = float(sys.argv[1]), sys.argv[2], sys.argv[3]
if role == "parent":  # the work happens in a child, as in a server with worker processes
    subprocess.run([sys.executable, "-c", SCRIPT, str(seconds), marker, "child"], timeout=60)
    sys.exit(0)
end = time.monotonic() + seconds
while time.monotonic() < end:
    pass
time.sleep(60)
"""
"""A process that burns one core for argv[1] seconds, then sleeps (bounded: 60 s); as "parent" it
starts one such process as its child and waits for it instead."""


@contextmanager
def burner(seconds: float, *extra: str, child: bool = False) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A CPU-burning process with a unique marker in its command line; yields (process, marker).
    Its process group (ours: a new session) is killed at the end."""
    marker = f"perfsuite-backlog-test-{uuid.uuid4().hex[:12]}"
    script = f"SCRIPT = {BURN!r}\nexec(SCRIPT)"
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(seconds), marker, "parent" if child else "alone", *extra],
        start_new_session=True,
    )
    try:
        time.sleep(0.3)  # let the interpreter (and its child) start
        yield process, marker
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def test_the_queueing_bot_backlog_is_seen_and_its_drain_time_reported(redis_url: str) -> None:
    """slow_queue acks at once and queues in Redis: read from its list, the backlog is seen when the
    load stops and drains (drain time and rate reported); its /health alone says 'backlog unknown'."""
    with slow_queue(redis_url, drain_per_s=20) as bot:
        answers = [send(bot, valid_message(bot)).status for _ in range(12)]
        assert answers == [200] * 12
        backlog = watch_backlog(
            bot.url + "/health",
            5.0,
            redis_backlog(RedisKey(key=QUEUE_KEY, type="list")),
            environ={BOT_REDIS: redis_url},
        )
        assert backlog.supported and backlog.drained
        assert backlog.depth_at_stop is not None and backlog.depth_at_stop >= 5
        assert backlog.drain_s is not None and 0 < backlog.drain_s < 5
        assert backlog.drain_rate_per_s is not None and 5 < backlog.drain_rate_per_s < 60
        assert backlog.estimated_drain_s is None
        assert [s.source for s in backlog.sources] == [f"redis list {QUEUE_KEY}"]
        verdict = texts(backlog)[0]
        assert verdict.startswith(f"{backlog.depth_at_stop} queued when the load stopped, drained in ")

        for _ in range(5):
            send(bot, valid_message(bot))
        unknown = watch_backlog(bot.url + "/health", 5.0)  # no target.backlog: /health, as before
    assert not unknown.supported and unknown.drained is None
    assert unknown.reason is not None and unknown.reason.startswith(UNKNOWN)
    assert "has no queue depth (no queue.depth, queue_depth, backlog)" in unknown.reason
    assert describe_backlog(unknown)[0].tone == "warn"


def test_a_backlog_that_does_not_drain_in_time_gets_its_rate_and_an_estimate(redis_url: str) -> None:
    """100 tasks queued, drained at 5/s, watched 2 s: not drained, the fitted rate is near 5/s and the
    time still needed is the depth left over that rate."""
    with slow_queue(redis_url, drain_per_s=5) as bot:
        client = redis.Redis.from_url(redis_url)
        client.lpush(QUEUE_KEY, *(f"task-{n}" for n in range(100)))
        client.close()
        backlog = watch_backlog(
            bot.url + "/health",
            2.0,
            redis_backlog(RedisKey(key=QUEUE_KEY)),
            environ={BOT_REDIS: redis_url},
        )
    assert backlog.supported and backlog.drained is False and backlog.drain_s is None
    assert backlog.depth_at_stop is not None and backlog.depth_at_end is not None
    assert 80 <= backlog.depth_at_end < backlog.depth_at_stop <= 100
    assert backlog.reads >= 10 and 1.8 <= backlog.watched_s <= 2.5
    rate = backlog.drain_rate_per_s
    assert rate is not None and 2 <= rate <= 10
    assert backlog.estimated_drain_s == round(backlog.depth_at_end / rate, 1)
    verdict = describe_backlog(backlog)[0]
    assert verdict.tone == "bad"
    assert (
        f"{backlog.depth_at_end} still queued 2 s after the load ({backlog.depth_at_stop} at stop)"
        in verdict.text
    )
    assert "draining at ~" in verdict.text and "more to empty" in verdict.text


def test_the_issue_case_reads_as_about_13_minutes() -> None:
    """780 queued a minute after the run, draining at ~1/s: 'about 13 minutes'; a growing backlog
    and one standing still say so; an interrupted run (no watch) says the drain was not watched."""
    late = Backlog(
        supported=True, depth_at_stop=840, depth_at_end=780, timeout_s=60, watched_s=60, drain_rate_per_s=1.0
    )
    assert late.estimated_drain_s == 780.0
    assert texts(late)[0] == (
        "780 still queued 60 s after the load (840 at stop), draining at ~1.0/s: "
        "about 13 minutes more to empty"
    )
    growing = late.model_copy(update={"drain_rate_per_s": -0.5})
    assert growing.estimated_drain_s is None and texts(growing)[0].endswith("growing at ~0.50/s")
    still = late.model_copy(update={"drain_rate_per_s": 0.0})
    assert texts(still)[0].endswith("not draining")
    interrupted = Backlog(supported=True, depth_at_stop=12, depth_at_end=12, timeout_s=0)
    assert texts(interrupted) == ["12 queued when the load stopped (drain not watched)"]


def test_every_redis_key_type_a_pattern_and_a_consumer_group_are_read(redis_url: str) -> None:
    """list, zset, set, stream (XLEN), a consumer group's pending (XPENDING) and lag, and a glob
    pattern over lists (keys of other types ignored) are read; the depth is their sum, each kept."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.rpush("jobs:list", *"abc")
        client.zadd("jobs:delayed", {"a": 1, "b": 2})
        client.sadd("jobs:set", "x")
        for n in range(10):
            client.xadd("jobs:stream", {"n": n})
        client.xgroup_create("jobs:stream", "workers", id="0")
        client.xreadgroup("workers", "w1", {"jobs:stream": ">"}, count=4)
        client.rpush("celery:a", *"12")
        client.rpush("celery:b", *"345")
        client.sadd("celery:bindings", "not-a-queue")
    finally:
        client.close()
    config = redis_backlog(
        RedisKey(key="jobs:list"),
        RedisKey(key="jobs:delayed", type="zset"),
        RedisKey(key="jobs:set", type="set"),
        RedisKey(key="jobs:stream", type="stream"),
        RedisKey(key="jobs:stream", type="pending", group="workers"),
        RedisKey(key="jobs:stream", type="lag", group="workers"),
        RedisKey(key="celery:*", type="list"),
        RedisKey(key="jobs:missing"),
    )
    backlog = watch_backlog(None, 0, config, environ={BOT_REDIS: redis_url})
    depths = {source.source: source.depth_at_stop for source in backlog.sources}
    assert depths == {
        "redis list jobs:list": 3,
        "redis zset jobs:delayed": 2,
        "redis set jobs:set": 1,
        "redis stream jobs:stream": 10,
        "redis pending jobs:stream (group workers)": 4,
        "redis lag jobs:stream (group workers)": 6,
        "redis list celery:*": 5,
        "redis list jobs:missing": 0,
    }
    assert backlog.supported and backlog.depth_at_stop == backlog.depth_at_end == 31
    assert all(source.error is None for source in backlog.sources)
    assert len(texts(backlog)) == 1 + len(depths)  # the verdict, then each source


def test_a_key_of_the_wrong_type_or_group_is_reported_and_the_others_still_count(redis_url: str) -> None:
    """A hash where a list was promised and a missing consumer group are reported with the reason;
    the readable key still makes the backlog known."""
    client = redis.Redis.from_url(redis_url)
    client.hset("jobs:hash", "a", "1")
    client.rpush("jobs:list", "x")
    client.xadd("jobs:stream", {"n": 1})
    client.close()
    config = redis_backlog(
        RedisKey(key="jobs:hash"),
        RedisKey(key="jobs:list"),
        RedisKey(key="jobs:stream", type="pending", group="nobody"),
        RedisKey(key="jobs:stream", type="lag", group="nobody"),
    )
    backlog = watch_backlog(None, 0, config, environ={BOT_REDIS: redis_url})
    errors = {source.source: source.error for source in backlog.sources}
    assert errors["redis list jobs:hash"] == "key jobs:hash holds a hash, not a list"
    assert errors["redis list jobs:list"] is None
    assert errors["redis pending jobs:stream (group nobody)"] == (
        "stream jobs:stream has no consumer group nobody (or the key does not exist)"
    )
    assert errors["redis lag jobs:stream (group nobody)"] == "stream jobs:stream has no consumer group nobody"
    assert backlog.supported and backlog.depth_at_stop == 1
    assert "  redis list jobs:hash: not read: key jobs:hash holds a hash, not a list" in texts(backlog)


def test_the_bots_redis_url_never_shows_in_any_message() -> None:
    """The bot's Redis URL and password (from the environment) appear in no reason, report line or
    stored result, whether the password is right, wrong or the server is away; a URL password in a
    metrics URL is redacted in messages and in the config snapshot."""
    password, wrong = "s3cret-Pa55word", "wr0ng-Pa55word"
    server = start_redis(extra_args=("--requirepass", password))
    try:
        port = server.extra["port"]
        good_url = f"redis://:{password}@127.0.0.1:{port}/0"
        client = redis.Redis.from_url(good_url)
        client.rpush("q", "a", "b")
        client.close()
        config = redis_backlog(RedisKey(key="q"))
        ok = watch_backlog(None, 0, config, environ={BOT_REDIS: good_url})
        assert ok.supported and ok.depth_at_stop == 2
        outcomes = [ok]
        for url in (f"redis://:{wrong}@127.0.0.1:{port}/0", f"redis://:{password}@127.0.0.1:{free_port()}/0"):
            failed = watch_backlog(None, 0, config, environ={BOT_REDIS: url})
            assert not failed.supported and failed.reason is not None
            assert "redis list q: the bot's Redis (BOT_REDIS_URL) " in failed.reason
            outcomes.append(failed)
        unset = watch_backlog(None, 0, config, environ={})
        assert unset.reason == (
            "backlog unknown: no backlog source could be read (redis list q: BOT_REDIS_URL is not set "
            "(it must hold the bot's Redis URL)); fix target.backlog"
        )
        leaky = BacklogConfig(
            prometheus=PrometheusSource(
                url=f"http://scraper:{password}@127.0.0.1:{free_port()}/metrics", metric="q"
            )
        )
        away = watch_backlog(None, 0, leaky)
        assert away.reason is not None and "http://scraper:***@127.0.0.1" in away.reason
        outcomes.append(away)
        for backlog in outcomes:
            shown = backlog.model_dump_json() + "\n".join(texts(backlog))
            assert password not in shown and wrong not in shown
        assert password not in leaky.model_dump_json() and "scraper:***@" in leaky.model_dump_json()
    finally:
        server.stop()


def test_a_prometheus_metric_is_read_with_label_matchers_and_drains() -> None:
    """A real prometheus_client exposition is parsed like the reference parser does; label matchers
    (=, !=, =~, !~; escaped values) select samples, summed; a metric that falls to 0 over the scrapes
    is a drained backlog; a missing metric is reported with what was there."""
    registry = CollectorRegistry()
    queue = Gauge("celery_queue_length", "Tasks waiting", ["queue"], registry=registry)
    Counter("tasks", "Tasks done", ["queue"], registry=registry).labels("default").inc(5)
    queue.labels("default").set(7)
    queue.labels("high").set(3)
    queue.labels('odd "quoted" \\ name\n').set(2)
    exposition = generate_latest(registry).decode()
    ours = sorted((n, sorted(labels.items()), v) for n, labels, v in parse_exposition(exposition))
    reference = sorted(
        (s.name, sorted(s.labels.items()), s.value)
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    )
    assert ours == reference

    scrapes = iter([10, 6, 3, 0])

    def answer(path: str) -> tuple[int, str, str]:
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4", exposition
        if path == "/draining":
            return 200, "text/plain", f'# TYPE q gauge\nq{{queue="a"}} {next(scrapes, 0)}\nq{{queue="b"}} 0\n'
        return 404, "text/plain", "no"

    def depth(host: str, metric: str) -> Backlog:
        return watch_backlog(
            None, 0, BacklogConfig(prometheus=PrometheusSource(url="/metrics", metric=metric)), host=host
        )

    with http_endpoint(answer) as host:
        assert depth(host, 'celery_queue_length{queue="default"}').depth_at_stop == 7
        assert depth(host, "celery_queue_length").depth_at_stop == 12
        assert depth(host, 'celery_queue_length{queue!="default"}').depth_at_stop == 5
        assert depth(host, 'celery_queue_length{queue=~"h.*|odd.*"}').depth_at_stop == 5
        assert depth(host, 'celery_queue_length{queue!~"h.*"}').depth_at_stop == 9
        assert depth(host, r'celery_queue_length{queue="odd \"quoted\" \\ name\n"}').depth_at_stop == 2
        assert depth(host, 'tasks_total{queue="default"}').depth_at_stop == 5
        missing = depth(host, 'celery_queue_length{queue="low"}')
        assert not missing.supported and missing.reason is not None
        assert f'no sample of celery_queue_length{{queue="low"}} at {host}/metrics' in missing.reason
        assert "(3 sample(s) of celery_queue_length with other labels)" in missing.reason
        drained = watch_backlog(
            None,
            5.0,
            BacklogConfig(prometheus=PrometheusSource(url=host + "/draining", metric="q"), poll_s=0.05),
        )
    assert drained.supported and drained.drained and drained.depth_at_stop == 10 and drained.reads == 4
    assert drained.drain_rate_per_s is not None and drained.drain_rate_per_s > 0


def test_health_json_paths_and_the_old_call_still_work() -> None:
    """A configured dotted path (with * summing a list) reads a bot's own health layout; the old call
    ``watch_backlog(health_url, timeout)`` still reads ``queue.depth``; a health answer that is not
    JSON, or has no such path, is reported as such."""
    documents = {
        "/stats": {"status": "ok", "stats": {"queues": [{"size": 3}, {"size": 4}]}},
        "/health": {"queue": {"depth": 0, "max": 100}},
    }

    def answer(path: str) -> tuple[int, str, str]:
        if path in documents:
            return 200, "application/json", json.dumps(documents[path])
        return 200, "text/html", "<html>fine</html>"

    with http_endpoint(answer) as host:
        summed = watch_backlog(
            None, 0, BacklogConfig(health=HealthSource(url="/stats", path="stats.queues.*.size")), host=host
        )
        assert summed.supported and summed.depth_at_stop == 7
        assert [s.source for s in summed.sources] == [f"health {host}/stats stats.queues.*.size"]
        old = watch_backlog(host + "/health", 1.0)
        assert old.supported and old.drained and old.drain_s == 0.0 and old.depth_at_stop == 0
        wrong = watch_backlog(
            None, 0, BacklogConfig(health=HealthSource(url=host + "/stats", path="stats.size"))
        )
        assert wrong.reason is not None and f"{host}/stats has no queue depth (no stats.size)" in wrong.reason
        html = watch_backlog(host + "/html", 0)
        assert html.reason is not None and f"{host}/html did not answer JSON" in html.reason
    stored = {"supported": True, "depth_at_stop": 3, "depth_at_end": 0, "drain_s": 1.2, "timeout_s": 30.0}
    assert Backlog.model_validate({**stored, "drained": True}).drained  # results stored before still read


def test_a_bot_without_health_and_a_target_without_sources_are_unknown(zoo: Zoo) -> None:
    """The zoo's no_health bot (/health is 404): 'backlog unknown' with the HTTP status; no health URL
    and no source at all: the plain 'unknown' reason, never an empty report."""
    bot = zoo.bot("no_health")
    backlog = watch_backlog(bot.url + "/health", 5.0)
    assert not backlog.supported and backlog.drained is None
    assert backlog.reason == f"{UNKNOWN} (health {bot.url}/health: HTTP 404 from {bot.url}/health)"
    assert describe_backlog(backlog)[0].tone == "warn"
    nothing = watch_backlog(None, 5.0)
    assert nothing.reason is not None and nothing.reason.startswith(UNKNOWN)


def test_a_bot_busy_after_the_load_is_seen_until_it_goes_idle() -> None:
    """A bot (here: a parent whose child burns a core for 1.5 s) found by a part of its command line:
    its CPU, children included, is high after the load, then it goes idle and the watch ends early."""
    with burner(1.5, child=True) as (process, marker):
        assert find_process(ProcessConfig(name=marker)).pid == process.pid  # the tree's root
        config = BacklogConfig(process=ProcessConfig(name=marker, idle_for_s=0.5), poll_s=0.1)
        started = time.monotonic()
        backlog = watch_backlog(None, 8.0, config)
        elapsed = time.monotonic() - started
    activity = backlog.activity
    assert activity is not None and activity.supported and activity.processes == 2
    assert activity.cpu_max_percent is not None and activity.cpu_max_percent > 10
    assert activity.idle_after_s is not None and 0.5 < activity.idle_after_s < 4
    assert activity.busy_after_load is False and elapsed < 6
    assert describe_backlog(backlog)[-1].text.startswith(f"bot process pid {process.pid} (")
    assert describe_backlog(backlog)[-1].tone == "ok"


def test_a_bot_still_busy_at_the_end_and_an_idle_one() -> None:
    """A process burning CPU past the watch is 'still busy' (hidden work); a sleeping one, given by
    pid, is idle from the start (and not judged when there is no time to watch); an exited one is
    reported as exited."""
    with burner(30) as (busy, _):
        backlog = watch_backlog(None, 1.0, BacklogConfig(poll_s=0.1), pid=busy.pid)
    activity = backlog.activity
    assert activity is not None and activity.busy_after_load is True and activity.idle_after_s is None
    assert activity.cpu_at_end_percent is not None and activity.cpu_at_end_percent > 10
    line = describe_backlog(backlog)[-1]
    assert line.tone == "bad" and "still busy 1 s after the load" in line.text and "hidden work" in line.text

    with burner(0) as (idle, _):
        unwatched = watch_backlog(None, 0, pid=idle.pid)  # an interrupted run: no time to watch
        assert unwatched.activity is not None and unwatched.activity.busy_after_load is None
        assert describe_backlog(unwatched)[-1].text.endswith("not sampled (the drain was not watched)")
        quiet = watch_backlog(
            None, 3.0, BacklogConfig(process=ProcessConfig(pid=idle.pid, idle_for_s=0.3), poll_s=0.1)
        )
    assert (
        quiet.activity is not None and quiet.activity.idle_after_s == 0.0 and quiet.activity.watched_s < 1.5
    )

    gone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.4)"])
    try:
        exited = watch_backlog(None, 3.0, BacklogConfig(poll_s=0.1), pid=gone.pid)
    finally:
        gone.wait(5)
    assert exited.activity is not None and exited.activity.exited_after_s is not None
    assert exited.activity.busy_after_load is False


def test_an_ambiguous_or_absent_process_is_refused_clearly_and_secrets_stay_hidden() -> None:
    """Two separate processes matching one name are refused with both shown (their command-line
    secrets redacted); no match is 'not running'; in the watch both become the activity's reason."""
    secret = "hunter2-Pa55"
    extra = ("--password", secret, f"redis://:{secret}@127.0.0.1:6390/0", f"API_TOKEN={secret}")
    with burner(0, *extra) as (first, marker), burner(0, marker) as (second, _):
        with pytest.raises(ConfigError, match="separate processes match") as refused:
            find_process(ProcessConfig(name=marker))
        message = str(refused.value)
        assert f"pid {first.pid}" in message and f"pid {second.pid}" in message
        assert secret not in message
        assert "--password *** redis://:***@127.0.0.1:6390/0 API_TOKEN=***" in message
        watched = watch_backlog(None, 1.0, BacklogConfig(process=ProcessConfig(name=marker)))
        assert watched.activity is not None and not watched.activity.supported
        assert watched.activity.reason == message and watched.activity.busy_after_load is None
    with pytest.raises(ServiceUnavailable, match="no process matches"):
        find_process(ProcessConfig(name=f"no-such-bot-{uuid.uuid4().hex}"))


def test_backlog_settings_are_checked_when_loaded_and_before_the_load() -> None:
    """Bad settings fail at load with a clear reason; preflight names an unset or wrong Redis URL
    variable without printing its value."""
    bad: list[tuple[Callable[[], object], str]] = [
        (lambda: RedisKey(key="s", type="pending"), "type pending needs group"),
        (lambda: RedisKey(key="l", group="g"), "group is only for type pending or lag"),
        (lambda: RedisKey(key="s:*", type="lag", group="g"), "glob patterns"),
        (lambda: RedisSource(url_env="BOT-URL", keys=(RedisKey(key="q"),)), "url_env"),
        (lambda: RedisSource(url_env="BOT_REDIS_URL", keys=()), "at least 1"),
        (
            lambda: PrometheusSource(url="/metrics", metric="q{queue=default}"),
            "cannot read the label matcher",
        ),
        (lambda: PrometheusSource(url="ftp://x/metrics", metric="q"), "must be an http(s) URL"),
        (lambda: ProcessConfig(), "exactly one of pid"),
        (lambda: ProcessConfig(pid=1, name="bot"), "exactly one of pid"),
        (lambda: BacklogConfig.model_validate({"redis_url": "redis://x"}), "Extra inputs are not permitted"),
    ]
    for build, reason in bad:
        with pytest.raises(ValidationError, match=re.escape(reason)):
            build()
    config = redis_backlog(RedisKey(key="q"))
    with pytest.raises(ConfigError, match="BOT_REDIS_URL is not set"):
        preflight_backlog(config, environ={})
    with pytest.raises(ConfigError, match="must be a redis://") as wrong:
        preflight_backlog(config, environ={BOT_REDIS: "http://user:pw@host/"})
    assert "pw" not in str(wrong.value)
    preflight_backlog(
        config, environ={BOT_REDIS: "redis://127.0.0.1:6379/0"}
    )  # checks only, connects nowhere

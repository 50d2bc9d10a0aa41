"""Fault drivers, fault windows and the fault scheduler, against a real Redis and a real fault proxy."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import ValidationError
from redis.backoff import NoBackoff
from redis.retry import Retry

from perfsuite.embedded import ManagedProcess, start_redis
from perfsuite.errors import ConfigError
from perfsuite.faults import (
    FAULT_END,
    FAULT_START,
    FaultDriver,
    FaultError,
    FaultSchedule,
    FaultScheduler,
    FaultWindow,
    ProxyOutage,
    ProxyToxic,
    RedisPause,
    ShellCommand,
    ToxiproxyClient,
    driver_for,
)


@pytest.fixture()
def proxied_redis(chaos_proxy: ManagedProcess, redis_server: ManagedProcess) -> Iterator[int]:
    """Port of a proxy named ``redis`` in front of the private Redis (deleted afterwards)."""
    client = ToxiproxyClient(chaos_proxy.url)
    proxy = client.create_proxy("redis", "127.0.0.1:0", f"127.0.0.1:{redis_server.extra['port']}")
    yield proxy.listen_port
    client.delete_proxy("redis")


@pytest.fixture()
def paused_redis() -> Iterator[ManagedProcess]:
    """A Redis of the test's own, so that pausing it holds up nobody else."""
    server = start_redis()
    yield server
    server.stop()


def _redis(port: int, socket_timeout: float = 5.0) -> redis.Redis:
    return redis.Redis(
        port=port, socket_timeout=socket_timeout, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0)
    )


def _timed(action: Any) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


# -- drivers ----------------------------------------------------------------------------------


def test_proxy_outage_stops_traffic_and_heal_restores_it(
    chaos_proxy: ManagedProcess, proxied_redis: int
) -> None:
    """ProxyOutage really cuts the dependency off (connects refused) and heal (twice) restores it."""
    window = FaultWindow(at_s=0, duration_s=1, driver="proxy", target="redis", api_url=chaos_proxy.url)
    driver = driver_for(window)
    assert isinstance(driver, ProxyOutage)
    client = _redis(proxied_redis)
    client.ping()
    driver.inject()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    driver.heal()
    driver.heal()
    assert client.ping() is True


def test_proxy_toxic_adds_latency_and_heal_is_idempotent(
    chaos_proxy: ManagedProcess, proxied_redis: int
) -> None:
    """ProxyToxic adds its toxic (again without error if it is still there) and heal removes it."""
    window = FaultWindow(
        at_s=0,
        duration_s=1,
        driver="toxic",
        target="redis",
        api_url=chaos_proxy.url,
        toxic={"type": "latency", "attributes": {"latency": 80}},
    )
    driver = driver_for(window)
    assert isinstance(driver, ProxyToxic) and driver.toxic_name == "latency_downstream"
    client = _redis(proxied_redis)
    client.ping()
    driver.inject()
    driver.inject()  # left over from an interrupted run: taken over, not an error
    assert _timed(client.ping) >= 0.07
    driver.heal()
    driver.heal()
    assert _timed(client.ping) < 0.05
    assert ToxiproxyClient(chaos_proxy.url).toxics("redis") == []


def test_redis_pause_holds_commands_and_ends_by_itself(paused_redis: ManagedProcess) -> None:
    """RedisPause holds every client's commands for the pause; Redis ends it on its own even if
    heal never comes, and heal during the pause returns when the pause is over."""
    other = _redis(int(paused_redis.extra["port"]))
    other.ping()
    driver = RedisPause(paused_redis.url, pause_s=0.6)
    driver.inject()
    held = _timed(lambda: other.get("key"))
    assert 0.45 <= held <= 2.0, f"GET was held {held:.2f} s by a 0.6 s pause"
    assert _timed(other.ping) < 0.1

    driver.inject()
    healed_after = _timed(driver.heal)  # mode all: Redis holds UNPAUSE too, until the pause ends
    assert 0.4 <= healed_after <= 2.0
    assert _timed(other.ping) < 0.1
    driver.heal()  # nothing paused: still fine


def test_redis_pause_write_mode_is_healed_at_once(paused_redis: ManagedProcess) -> None:
    """In write mode reads go on, writes wait, and heal releases them at once (not after the window)."""
    port = int(paused_redis.extra["port"])
    driver = RedisPause(paused_redis.url, pause_s=10, mode="write")
    driver.inject()
    try:
        assert _timed(_redis(port).ping) < 0.5
        finished: list[float] = []
        started = time.monotonic()

        def write() -> None:
            _redis(port).set("k", "v")
            finished.append(time.monotonic())

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.3)
        assert not finished, "a write went through during a write pause"
    finally:
        driver.heal()
    writer.join(5)
    assert finished and finished[0] - started < 2.0


def test_shell_command_runs_inject_and_heal(tmp_path: Path) -> None:
    """ShellCommand runs the user's inject and heal command lines through the shell."""
    flag = tmp_path / "down"
    driver = ShellCommand(f"touch '{flag}' && echo injected", f"rm -f '{flag}'")
    driver.inject()
    assert flag.exists()
    driver.heal()
    driver.heal()
    assert not flag.exists()


def test_shell_command_failure_says_which_command_and_why() -> None:
    """A command that exits non-zero raises FaultError with its status and the end of its output."""
    driver = ShellCommand("echo 'redis: no such service' >&2; exit 3", "true")
    with pytest.raises(FaultError) as caught:
        driver.inject()
    message = str(caught.value)
    assert "inject" in message and "exited with status 3" in message and "no such service" in message


def test_shell_command_timeout_kills_the_command_and_its_children(tmp_path: Path) -> None:
    """A command running past its timeout is killed with its children, and FaultError says so."""
    marker = tmp_path / "late"
    driver = ShellCommand(f"(sleep 1.5; touch '{marker}') & sleep 30", "true", timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(FaultError, match=r"did not finish within 0\.3s"):
        driver.inject()
    assert time.monotonic() - started < 5
    time.sleep(1.6)
    assert not marker.exists(), "the command's background child survived the timeout"


def test_descriptions_never_show_secrets() -> None:
    """describe() and repr() hide passwords in URLs, after -a/--password flags and in *_PASSWORD=."""
    drivers: list[FaultDriver] = [
        ShellCommand("redis-cli -a s3cret DEBUG SLEEP 5", "REDIS_PASSWORD=s3cret ./heal.sh --token=s3cret"),
        RedisPause("redis://:s3cret@127.0.0.1:6379/0", pause_s=1),
        ProxyOutage(ToxiproxyClient("http://admin:s3cret@127.0.0.1:8474"), "redis"),
        ProxyToxic(ToxiproxyClient("http://admin:s3cret@127.0.0.1:8474"), "redis", "latency", {"latency": 5}),
    ]
    for driver in drivers:
        text = driver.describe() + repr(driver)
        assert "s3cret" not in text, text
    assert "DEBUG SLEEP 5" in drivers[0].describe()


# -- fault windows ----------------------------------------------------------------------------


def test_fault_window_defaults_and_driver_for() -> None:
    """A window gets a default name and Toxiproxy's defaults; driver_for picks the driver for it."""
    window = FaultWindow.model_validate({"at_s": 30, "duration_s": 10, "driver": "proxy", "target": "redis"})
    assert window.name == "proxy:redis@30s" and window.end_s == 40
    assert window.api_url == "http://127.0.0.1:8474"
    toxic = FaultWindow.model_validate(
        {"at_s": 0, "duration_s": 1, "driver": "toxic", "target": "db", "toxic": {"type": "timeout"}}
    )
    assert toxic.toxic is not None and toxic.toxic.attributes == {"timeout": 0}
    assert toxic.toxic.stream == "downstream" and toxic.toxic.toxicity == 1.0
    shell = FaultWindow(at_s=1, duration_s=2, driver="shell", target="database", inject="a", heal="b")
    assert isinstance(driver_for(shell), ShellCommand)
    pause = FaultWindow(at_s=1, duration_s=2.5, driver="redis_pause", target="redis")
    paused = driver_for(pause, redis_url="redis://127.0.0.1:6379/0")
    assert isinstance(paused, RedisPause) and paused.pause_s == 2.5
    with pytest.raises(ConfigError, match="redis_pause needs the URL"):
        driver_for(pause)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"at_s": -1, "duration_s": 1, "driver": "proxy", "target": "r"}, "greater than or equal to 0"),
        ({"at_s": 0, "duration_s": 0, "driver": "proxy", "target": "r"}, "greater than 0"),
        (
            {"at_s": 0, "duration_s": 1, "driver": "kill", "target": "r"},
            "'proxy', 'toxic', 'redis_pause' or 'shell'",
        ),
        ({"at_s": 0, "duration_s": 1, "driver": "proxy", "target": "r", "color": 1}, "Extra inputs"),
        ({"at_s": 0, "duration_s": 1, "driver": "toxic", "target": "r"}, "driver toxic needs toxic"),
        (
            {"at_s": 0, "duration_s": 1, "driver": "shell", "target": "r", "inject": "x"},
            "needs both inject and heal",
        ),
        (
            {"at_s": 0, "duration_s": 1, "driver": "proxy", "target": "r", "pause_mode": "write"},
            "pause_mode is for driver redis_pause",
        ),
        (
            {
                "at_s": 0,
                "duration_s": 1,
                "driver": "toxic",
                "target": "r",
                "toxic": {"type": "latency", "attributes": {"delay": 5}},
            },
            "unknown attribute(s) ['delay'] for a latency toxic",
        ),
        ({"at_s": 0, "duration_s": 1, "driver": "proxy", "target": "r", "api_url": "localhost"}, "http URL"),
    ],
)
def test_fault_window_refuses_bad_settings_with_clear_messages(data: dict[str, Any], message: str) -> None:
    """A wrong fault window fails validation with a message that says what is wrong."""
    with pytest.raises(ValidationError) as caught:
        FaultWindow.model_validate(data)
    assert message in str(caught.value)


def test_fault_schedule_refuses_overlaps_on_one_target_and_repeated_names() -> None:
    """Two windows on one target may not overlap (healing one would end the other), in a schedule
    or in a scheduler; names are unique."""
    base = {"driver": "proxy", "target": "redis"}
    FaultSchedule.model_validate(
        {"windows": [{**base, "at_s": 0, "duration_s": 5}, {**base, "at_s": 5, "duration_s": 5}]}
    )
    with pytest.raises(ValidationError, match="overlap on target redis"):
        FaultSchedule.model_validate(
            {"windows": [{**base, "at_s": 0, "duration_s": 5}, {**base, "at_s": 4, "duration_s": 5}]}
        )
    overlapping = [
        FaultWindow(name="a", at_s=0, duration_s=5, driver="proxy", target="redis"),
        FaultWindow(name="b", at_s=1, duration_s=5, driver="proxy", target="redis"),
    ]
    with pytest.raises(ValueError, match="overlap"):
        FaultScheduler(overlapping, {"a": _Recorder(), "b": _Recorder()}, _Marks())
    with pytest.raises(ValidationError, match="unique"):
        FaultSchedule.model_validate(
            {
                "windows": [
                    {**base, "at_s": 0, "duration_s": 1, "name": "x"},
                    {**base, "at_s": 9, "duration_s": 1, "name": "x", "target": "db"},
                ]
            }
        )


# -- the scheduler ----------------------------------------------------------------------------


class _Recorder:
    """A driver that records when it was called (the scheduler's timing is what is under test)."""

    def __init__(self, fail: str = "") -> None:
        self.calls: list[tuple[str, float]] = []
        self.fail = fail

    def inject(self) -> None:
        self.calls.append(("inject", time.monotonic()))
        if self.fail == "inject":
            raise FaultError("injection refused")

    def heal(self) -> None:
        self.calls.append(("heal", time.monotonic()))

    def describe(self) -> str:
        return "recorder"


class _Marks:
    """Collects on_mark calls."""

    def __init__(self, fail: bool = False) -> None:
        self.marks: list[tuple[str, float, dict[str, Any]]] = []
        self.fail = fail

    def __call__(self, kind: str, at_s: float, **fields: Any) -> None:
        self.marks.append((kind, at_s, fields))
        if self.fail:
            raise RuntimeError("collector down")


def test_scheduler_injects_at_at_s_heals_after_duration_and_marks_both() -> None:
    """Each window is injected at at_s and healed at at_s + duration_s, with fault_start and
    fault_end marks carrying the window's name."""
    windows = [
        FaultWindow(name="a", at_s=0.2, duration_s=0.3, driver="proxy", target="redis"),
        FaultWindow(name="b", at_s=0.3, duration_s=0.1, driver="proxy", target="db"),
    ]
    drivers = {"a": _Recorder(), "b": _Recorder()}
    marks = _Marks()
    scheduler = FaultScheduler(windows, drivers, marks)
    t0 = time.monotonic()
    scheduler.start(t0)
    assert scheduler.join(5)
    (inject_a, at_a), (heal_a, end_a) = drivers["a"].calls
    assert (inject_a, heal_a) == ("inject", "heal")
    assert 0.18 <= at_a - t0 <= 0.4 and 0.48 <= end_a - t0 <= 0.7
    assert [(kind, fields["fault"]) for kind, _, fields in marks.marks] == [
        (FAULT_START, "a"),
        (FAULT_START, "b"),
        (FAULT_END, "b"),
        (FAULT_END, "a"),
    ]
    start_a = marks.marks[0]
    assert 0.18 <= start_a[1] <= 0.4
    assert start_a[2] == {"fault": "a", "driver": "proxy", "target": "redis", "description": "recorder"}
    assert marks.marks[3][2]["stopped_early"] is False
    assert scheduler.errors == () and scheduler.active == ()


def test_scheduler_heals_when_stopped_early_and_skips_later_windows() -> None:
    """stop() heals the active fault at once (marked stopped_early) and never injects later windows."""
    windows = [
        FaultWindow(name="now", at_s=0, duration_s=60, driver="proxy", target="redis"),
        FaultWindow(name="later", at_s=30, duration_s=1, driver="proxy", target="db"),
    ]
    drivers = {"now": _Recorder(), "later": _Recorder()}
    marks = _Marks()
    with FaultScheduler(windows, drivers, marks) as scheduler:
        time.sleep(0.2)
        assert scheduler.active == ("now",)
    assert [call for call, _ in drivers["now"].calls] == ["inject", "heal"]
    assert drivers["later"].calls == []
    assert marks.marks[-1][0] == FAULT_END and marks.marks[-1][2]["stopped_early"] is True


def test_scheduler_still_heals_when_inject_or_marking_fails() -> None:
    """A failing injection or a failing mark callback is recorded, and the fault is healed anyway."""
    windows = [FaultWindow(name="w", at_s=0, duration_s=0.1, driver="proxy", target="redis")]
    driver = _Recorder(fail="inject")
    marks = _Marks(fail=True)
    scheduler = FaultScheduler(windows, {"w": driver}, marks)
    scheduler.start()
    assert scheduler.join(5)
    assert [call for call, _ in driver.calls] == ["inject", "heal"]
    assert marks.marks[0][2]["error"] == "injection refused"
    assert len(scheduler.errors) == 3  # the injection and both marks


def test_scheduler_with_a_real_proxy_outage(chaos_proxy: ManagedProcess, proxied_redis: int) -> None:
    """End to end: during the window Redis through the proxy is unreachable, after it it works."""
    window = FaultWindow(
        name="redis-down", at_s=0.1, duration_s=0.5, driver="proxy", target="redis", api_url=chaos_proxy.url
    )
    marks = _Marks()
    client = _redis(proxied_redis, socket_timeout=1.0)
    with FaultScheduler([window], {window.name: driver_for(window)}, marks) as scheduler:
        time.sleep(0.3)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        assert scheduler.join(5)
    assert client.ping() is True
    assert [kind for kind, _, _ in marks.marks] == [FAULT_START, FAULT_END]
    assert "error" not in marks.marks[0][2] and "error" not in marks.marks[1][2]

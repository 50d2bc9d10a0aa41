"""The fault proxy (``perfsuite chaos-proxy``) as a real process in front of a real Redis and PostgreSQL.

Timings are behaviour checks with generous bands, not benchmarks: the machine is shared.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from perfsuite.embedded import ManagedProcess, free_port, start_redis, wait_for_http
from perfsuite.errors import EXIT_USAGE
from perfsuite.faults.client import ProxyState, ToxiproxyClient
from perfsuite.faults.errors import ApiError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def api(chaos_proxy: ManagedProcess) -> Iterator[ToxiproxyClient]:
    """A client of the fault proxy's API; every proxy is deleted after the test."""
    client = ToxiproxyClient(chaos_proxy.url)
    yield client
    for name in client.proxies():
        client.delete_proxy(name)


@pytest.fixture()
def redis_proxy(api: ToxiproxyClient, redis_server: ManagedProcess) -> ProxyState:
    """A proxy named ``redis`` on a free loopback port in front of the private Redis."""
    return api.create_proxy("redis", "127.0.0.1:0", f"127.0.0.1:{redis_server.extra['port']}")


def _redis(port: int, socket_timeout: float = 5.0) -> redis.Redis:
    """A redis-py client that never retries, so that each fault shows as it is."""
    return redis.Redis(
        port=port, socket_timeout=socket_timeout, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0)
    )


def _median_ping_ms(client: redis.Redis, count: int) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        client.ping()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _http(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Status and decoded JSON body (None when empty) of one raw HTTP request."""
    data = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    return status, (json.loads(text) if text else None)


# -- toxics and outages against a real Redis -------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_toxic_adds_the_set_latency_to_redis_round_trips(
    api: ToxiproxyClient, redis_proxy: ProxyState, redis_server: ManagedProcess, stream: str
) -> None:
    """A 50 ms latency toxic (on either stream) makes each Redis round trip about 50 ms slower."""
    direct = _redis(int(redis_server.extra["port"]))
    proxied = _redis(redis_proxy.listen_port)
    proxied.ping()
    direct_ms = _median_ping_ms(direct, 20)
    api.add_toxic("redis", "latency", {"latency": 50}, stream=stream)
    added_ms = _median_ping_ms(proxied, 9) - direct_ms
    assert 40 <= added_ms <= 150, f"latency toxic added {added_ms:.1f} ms, expected about 50"


def test_toxics_take_effect_on_live_connections(api: ToxiproxyClient, redis_proxy: ProxyState) -> None:
    """Adding, changing and removing a toxic affects a connection that is already open."""
    client = _redis(redis_proxy.listen_port)
    assert _median_ping_ms(client, 5) < 30
    api.add_toxic("redis", "latency", {"latency": 60}, name="slow")
    assert _median_ping_ms(client, 3) >= 50
    api.update_toxic("redis", "slow", toxicity=0.0)
    assert _median_ping_ms(client, 5) < 30, "toxicity 0 must never apply"
    api.update_toxic("redis", "slow", attributes={"latency": 120}, toxicity=1.0)
    assert _median_ping_ms(client, 3) >= 100
    api.remove_toxic("redis", "slow")
    assert _median_ping_ms(client, 5) < 30
    client.close()


def test_disabled_proxy_refuses_connections_and_reenabling_heals(
    api: ToxiproxyClient, redis_proxy: ProxyState
) -> None:
    """Disabling the proxy closes open connections and refuses new ones; enabling it again heals."""
    client = _redis(redis_proxy.listen_port)
    client.set("key", "value")
    api.set_enabled("redis", False)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", redis_proxy.listen_port), timeout=2).close()
    with pytest.raises(redis.ConnectionError):
        client.get("key")  # the open connection was closed; the reconnect is refused
    state = api.set_enabled("redis", True)
    assert state.enabled and state.listen == redis_proxy.listen
    assert client.get("key") == b"value"
    for _ in range(5):  # the outage is in force as soon as the API has answered, every time
        api.set_enabled("redis", False)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", redis_proxy.listen_port), timeout=2).close()
        api.set_enabled("redis", True)
        assert client.get("key") == b"value"


def test_timeout_toxic_zero_holds_requests_until_removed(
    api: ToxiproxyClient, redis_proxy: ProxyState
) -> None:
    """With timeout 0 no reply arrives (the client's socket timeout fires); removing the toxic
    closes the held connection, and the next command works."""
    client = _redis(redis_proxy.listen_port, socket_timeout=0.5)
    client.ping()
    api.add_toxic("redis", "timeout", {"timeout": 0})
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    assert 0.4 <= time.monotonic() - started < 2.0

    held = _redis(redis_proxy.listen_port, socket_timeout=5.0)
    threading.Timer(0.3, api.remove_toxic, ("redis", "timeout_downstream")).start()
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        held.ping()  # held until the toxic is removed, then closed (its request was dropped)
    assert 0.2 <= time.monotonic() - started < 3.0
    assert held.ping() is True


def test_timeout_toxic_closes_connections_after_its_timeout(
    api: ToxiproxyClient, redis_proxy: ProxyState
) -> None:
    """With timeout 300 the proxy drops the data and closes the connection about 300 ms later."""
    api.add_toxic("redis", "timeout", {"timeout": 300})
    client = _redis(redis_proxy.listen_port, socket_timeout=5.0)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError, match=r"[Cc]losed"):
        client.ping()
    assert 0.2 <= time.monotonic() - started < 2.0


def test_reset_peer_toxic_resets_the_connection(api: ToxiproxyClient, redis_proxy: ProxyState) -> None:
    """reset_peer answers the first data with a TCP RST: the client sees 'connection reset by peer'."""
    api.add_toxic("redis", "reset_peer", {"timeout": 0})
    with socket.create_connection(("127.0.0.1", redis_proxy.listen_port), timeout=5) as raw:
        raw.sendall(b"PING\r\n")
        with pytest.raises(ConnectionResetError):
            raw.recv(100)
    client = _redis(redis_proxy.listen_port)
    with pytest.raises(redis.ConnectionError, match="reset"):
        client.ping()
    api.remove_toxic("redis", "reset_peer_downstream")
    assert client.ping() is True


def test_bandwidth_toxic_limits_throughput(
    api: ToxiproxyClient, redis_proxy: ProxyState, redis_url: str
) -> None:
    """A 200 KB/s bandwidth toxic makes a 200 KB GET take about one second."""
    redis.Redis.from_url(redis_url).set("big", b"x" * 200_000)
    client = _redis(redis_proxy.listen_port)
    started = time.monotonic()
    assert len(client.get("big") or b"") == 200_000
    assert time.monotonic() - started < 0.5
    api.add_toxic("redis", "bandwidth", {"rate": 200})
    started = time.monotonic()
    assert len(client.get("big") or b"") == 200_000
    elapsed = time.monotonic() - started
    assert 0.7 <= elapsed <= 2.5, f"200 KB at 200 KB/s took {elapsed:.2f} s"


def test_reset_enables_every_proxy_and_removes_every_toxic(
    api: ToxiproxyClient, redis_proxy: ProxyState, chaos_proxy: ManagedProcess
) -> None:
    """POST /reset (204) brings a disabled, poisoned proxy back to a clean, working state."""
    api.add_toxic("redis", "latency", {"latency": 500})
    api.set_enabled("redis", False)
    status, body = _http(chaos_proxy.url + "/reset", "POST", b"")
    assert (status, body) == (204, None)
    state = api.proxy("redis")
    assert state.enabled and state.toxics == ()
    assert _median_ping_ms(_redis(redis_proxy.listen_port), 3) < 100


def test_postgres_connection_through_the_proxy_stops_while_disabled(api: ToxiproxyClient) -> None:
    """A PostgreSQL session through the proxy works, fails while the proxy is disabled, and a new
    session works again once it is enabled."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    proxy = api.create_proxy("database", "127.0.0.1:0", "127.0.0.1:5432")

    def connect() -> Any:
        errors = []
        for user in ("postgres", "root"):
            try:
                return psycopg2.connect(
                    host="127.0.0.1", port=proxy.listen_port, dbname="test", user=user, connect_timeout=3
                )
            except psycopg2.OperationalError as exc:
                errors.append(str(exc))
                if "refused" in str(exc) or "closed" in str(exc):
                    raise
        pytest.skip(f"no trusted PostgreSQL user for database test: {errors}")

    connection = connect()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    api.set_enabled("database", False)
    with pytest.raises(psycopg2.OperationalError), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    with pytest.raises(psycopg2.OperationalError, match="refused"):
        connect()
    api.set_enabled("database", True)
    connection = connect()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    connection.close()


# -- the API's JSON shapes, as Toxiproxy documents them -----------------------------------------


def test_proxy_endpoints_answer_with_toxiproxy_shapes(
    chaos_proxy: ManagedProcess, api: ToxiproxyClient
) -> None:
    """Create (201), list, get, update (POST and PATCH) and delete (204) proxies as Toxiproxy does."""
    base = chaos_proxy.url
    status, created = _http(
        base + "/proxies", "POST", {"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5432"}
    )
    assert status == 201
    assert set(created) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert created["name"] == "db" and created["upstream"] == "127.0.0.1:5432"
    assert created["enabled"] is True and created["toxics"] == []
    assert created["listen"].startswith("127.0.0.1:") and not created["listen"].endswith(":0")

    assert _http(base + "/proxies") == (200, {"db": created})
    assert _http(base + "/proxies/db") == (200, created)

    status, updated = _http(base + "/proxies/db", "POST", {**created, "enabled": False})
    assert status == 200 and updated == {**created, "enabled": False}
    status, updated = _http(base + "/proxies/db", "PATCH", {"enabled": True})
    assert status == 200 and updated == created

    status, disabled = _http(
        base + "/proxies", "POST", {"name": "off", "upstream": "127.0.0.1:1", "enabled": False}
    )
    assert status == 201 and disabled["enabled"] is False

    assert _http(base + "/proxies/db", "DELETE") == (204, None)
    assert _http(base + "/proxies/db")[0] == 404
    status, version = _http(base + "/version")
    assert status == 200 and isinstance(version["version"], str)


def test_toxic_endpoints_answer_with_toxiproxy_shapes(
    chaos_proxy: ManagedProcess, api: ToxiproxyClient
) -> None:
    """Add (200, defaults filled in), list, get, update and delete (204) toxics as Toxiproxy does."""
    base = chaos_proxy.url
    api.create_proxy("db", "127.0.0.1:0", "127.0.0.1:5432")
    status, toxic = _http(
        base + "/proxies/db/toxics", "POST", {"type": "latency", "attributes": {"latency": 100}}
    )
    assert status == 200
    assert toxic == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 100, "jitter": 0},
    }
    status, second = _http(
        base + "/proxies/db/toxics",
        "POST",
        {
            "name": "cut",
            "type": "timeout",
            "stream": "upstream",
            "toxicity": 0.5,
            "attributes": {"timeout": 0},
        },
    )
    assert status == 200
    assert second == {
        "name": "cut",
        "type": "timeout",
        "stream": "upstream",
        "toxicity": 0.5,
        "attributes": {"timeout": 0},
    }
    for kind, attributes in (("reset_peer", {"timeout": 10}), ("bandwidth", {"rate": 100})):
        status, added = _http(base + "/proxies/db/toxics", "POST", {"type": kind, "attributes": attributes})
        assert status == 200 and added["name"] == f"{kind}_downstream" and added["attributes"] == attributes

    status, listed = _http(base + "/proxies/db/toxics")
    assert status == 200 and [item["name"] for item in listed][:2] == ["latency_downstream", "cut"]
    assert _http(base + "/proxies/db/toxics/cut") == (200, second)
    assert _http(base + "/proxies/db")[1]["toxics"] == listed

    status, changed = _http(
        base + "/proxies/db/toxics/latency_downstream", "POST", {"attributes": {"jitter": 5}}
    )
    assert status == 200 and changed["attributes"] == {"latency": 100, "jitter": 5}  # latency kept
    status, changed = _http(base + "/proxies/db/toxics/cut", "PATCH", {"toxicity": 1})
    assert status == 200 and changed["toxicity"] == 1.0

    assert _http(base + "/proxies/db/toxics/cut", "DELETE") == (204, None)
    assert _http(base + "/proxies/db/toxics/cut")[0] == 404


def test_updating_upstream_and_listen_restarts_the_proxy(
    api: ToxiproxyClient, redis_proxy: ProxyState
) -> None:
    """A new upstream sends the next connections to the new server; a new listen address moves
    the proxy there (the old port refuses connections)."""
    other = start_redis()
    try:
        redis.Redis(port=int(other.extra["port"])).set("where", "other")
        client = _redis(redis_proxy.listen_port)
        assert client.get("where") is None
        moved = api.update_proxy("redis", upstream=f"127.0.0.1:{other.extra['port']}")
        assert moved.enabled and moved.upstream.endswith(other.extra["port"])
        assert client.get("where") == b"other"  # the old connection was closed; this one is new

        new_port = free_port()
        api.update_proxy("redis", listen=f"127.0.0.1:{new_port}")
        assert _redis(new_port).get("where") == b"other"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", redis_proxy.listen_port), timeout=2).close()
    finally:
        other.stop()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("GET", "/proxies/nope", None, 404, "proxy not found"),
        ("POST", "/proxies/nope", {"enabled": False}, 404, "proxy not found"),
        ("DELETE", "/proxies/nope", None, 404, "proxy not found"),
        ("GET", "/proxies/nope/toxics", None, 404, "proxy not found"),
        ("GET", "/proxies/db/toxics/nope", None, 404, "toxic not found"),
        ("DELETE", "/proxies/db/toxics/nope", None, 404, "toxic not found"),
        ("POST", "/proxies", {"name": "db", "upstream": "127.0.0.1:5432"}, 409, "proxy already exists"),
        ("POST", "/proxies/db/toxics", {"type": "latency"}, 409, "toxic already exists"),
        ("POST", "/proxies", {"upstream": "127.0.0.1:5432"}, 400, "missing required field: name"),
        ("POST", "/proxies", {"name": "x"}, 400, "missing required field: upstream"),
        ("POST", "/proxies", b"{not json", 400, "bad request body"),
        ("POST", "/proxies", {"name": "x", "upstream": "nowhere"}, 400, "bad request body"),
        ("POST", "/proxies/db", {"enabled": "yes"}, 400, "bad request body"),
        ("POST", "/proxies/db/toxics", {"type": "slicer"}, 400, "invalid toxic type"),
        ("POST", "/proxies/db/toxics", {"type": "latency", "stream": "sideways"}, 400, "stream was invalid"),
        (
            "POST",
            "/proxies/db/toxics",
            {"type": "latency", "attributes": {"latancy": 5}},
            400,
            "unknown attribute",
        ),
        ("POST", "/proxies/db/toxics", {"type": "latency", "toxicity": 2}, 400, "toxicity"),
        ("POST", "/proxies/db/toxics", {"type": "latency", "attributes": {"latency": -1}}, 400, "latency"),
        ("PUT", "/proxies", {}, 405, "not allowed"),
        ("GET", "/nothing/here", None, 404, "not found"),
    ],
)
def test_errors_answer_with_toxiproxy_error_bodies(
    chaos_proxy: ManagedProcess,
    api: ToxiproxyClient,
    method: str,
    path: str,
    body: Any,
    status: int,
    error: str,
) -> None:
    """Every refused request answers ``{"error": ..., "status": N}`` with Toxiproxy's code."""
    api.create_proxy("db", "127.0.0.1:0", "127.0.0.1:5432")
    api.add_toxic("db", "latency", {"latency": 1})
    got_status, got = _http(chaos_proxy.url + path, method, body)
    assert got_status == status
    assert set(got) == {"error", "status"} and got["status"] == status
    assert error in got["error"]


def test_client_raises_api_errors_with_status(api: ToxiproxyClient) -> None:
    """The client turns an error answer into ApiError carrying the status and the server's words."""
    with pytest.raises(ApiError) as caught:
        api.proxy("missing")
    assert caught.value.status == 404 and caught.value.message == "proxy not found"
    assert "GET " in str(caught.value) and "/proxies/missing" in str(caught.value)


def test_browsers_are_refused(chaos_proxy: ManagedProcess) -> None:
    """A browser (User-Agent Mozilla/...) gets 403, so a web page cannot take a dependency down."""
    status, body = _http(chaos_proxy.url + "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert status == 403 and body["status"] == 403


def test_populate_creates_and_keeps_unchanged_proxies(api: ToxiproxyClient, redis_proxy: ProxyState) -> None:
    """POST /populate (201) creates missing proxies, leaves an identical one (and its toxics) alone
    and replaces one whose addresses changed."""
    api.add_toxic("redis", "latency", {"latency": 1})
    same = {"name": "redis", "listen": redis_proxy.listen, "upstream": redis_proxy.upstream}
    fresh = {"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5432"}
    result = api.populate([same, fresh])
    assert [proxy.name for proxy in result] == ["redis", "db"]
    assert result[0].toxics and result[0].listen == redis_proxy.listen
    assert result[1].enabled
    replaced = api.populate([{**fresh, "upstream": "127.0.0.1:5433"}])
    assert replaced[0].upstream == "127.0.0.1:5433" and api.proxy("db").upstream == "127.0.0.1:5433"


# -- the command ------------------------------------------------------------------------------


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "perfsuite.faults", *args]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_creates_configured_proxies_and_stops_on_a_signal(
    tmp_path: Path, redis_server: ManagedProcess, stop_signal: signal.Signals
) -> None:
    """--config (Toxiproxy's format) and --proxy create proxies at start; SIGTERM or SIGINT stops
    it cleanly (exit 0, proxies closed)."""
    api_port, config_port, flag_port = free_port(), free_port(), free_port()
    upstream = f"127.0.0.1:{redis_server.extra['port']}"
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps([{"name": "from_file", "listen": f"127.0.0.1:{config_port}", "upstream": upstream}])
    )
    process = subprocess.Popen(
        _command(
            "--listen",
            f"127.0.0.1:{api_port}",
            "--config",
            str(config),
            "--proxy",
            f"from_flag=127.0.0.1:{flag_port}={upstream}",
        ),
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for_http(f"http://127.0.0.1:{api_port}/version", 10)
        proxies = ToxiproxyClient(f"http://127.0.0.1:{api_port}").proxies()
        assert sorted(proxies) == ["from_file", "from_flag"]
        for port in (config_port, flag_port):
            assert _redis(port).ping() is True
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output.decode()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", flag_port), timeout=2).close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proxy", "redis"], "NAME=LISTEN=UPSTREAM"),
        (["--proxy", "redis=127.0.0.1:0=nowhere"], "upstream"),
        (["--listen", "8474"], "HOST:PORT"),
        (["--config", "/nonexistent/proxies.json"], "not found"),
        (["--proxy", "a=127.0.0.1:0=127.0.0.1:1", "--proxy", "a=127.0.0.1:0=127.0.0.1:2"], "more than once"),
    ],
)
def test_command_refuses_bad_arguments_with_exit_64(args: list[str], message: str) -> None:
    """A bad flag or config file exits 64 with a message naming the problem, without a traceback."""
    result = subprocess.run(
        _command("--listen", f"127.0.0.1:{free_port()}", *args),
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == EXIT_USAGE
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_command_refuses_a_listen_address_in_use() -> None:
    """An API address already taken exits 64 saying so (no traceback)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            _command("--listen", f"127.0.0.1:{port}"),
            env=_child_env(),
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert result.returncode == EXIT_USAGE
    assert "cannot serve the API" in result.stderr and "Traceback" not in result.stderr

"""``perfsuite chaos-proxy``: the fault proxy's HTTP API, the subset of Toxiproxy's that the suite uses.

Same paths, methods, JSON shapes and status codes as Toxiproxy 2.x, so a real Toxiproxy can take
its place (its default port is 8474 too)::

  GET    /version                          {"version": "..."}
  GET    /proxies                          {name: proxy, ...}
  POST   /proxies                          create {name, listen, upstream, enabled=true} -> 201 proxy
                                           (409 if the name exists)
  POST   /populate                         create or replace a list of proxies -> 201 {"proxies": [...]}
  GET    /proxies/{proxy}                  proxy
  POST   /proxies/{proxy}                  update listen / upstream / enabled -> proxy (PATCH too)
  DELETE /proxies/{proxy}                  204
  GET    /proxies/{proxy}/toxics           [toxic, ...]
  POST   /proxies/{proxy}/toxics           add {name?, type, stream?, toxicity?, attributes} -> toxic
  GET    /proxies/{proxy}/toxics/{toxic}   toxic
  POST   /proxies/{proxy}/toxics/{toxic}   update attributes / toxicity -> toxic (PATCH too)
  DELETE /proxies/{proxy}/toxics/{toxic}   204
  POST   /reset                            enable every proxy, remove every toxic -> 204

A proxy is ``{name, listen, upstream, enabled, toxics: [...]}``; a toxic is ``{name, type, stream,
toxicity, attributes}`` (see :mod:`perfsuite.faults.toxics`). Errors are ``{"error": "...",
"status": N}``: 400 bad request, 404 proxy/toxic not found, 409 already exists. Requests from a
browser (``User-Agent: Mozilla/...``) get 403, as in Toxiproxy, so a web page cannot drive it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.pywsgi

from perfsuite.embedded import (
    ManagedProcess,
    free_port,
    interrupt_deferred,
    stopped_unless_started,
    wait_for_http,
)
from perfsuite.errors import EXIT_OK, EXIT_USAGE, ConfigError, PerfsuiteError
from perfsuite.faults.errors import ApiError, FaultError, InvalidToxic
from perfsuite.faults.proxy import format_address, parse_address
from perfsuite.faults.registry import ProxyRegistry, ProxySpec, proxy_spec_from_json
from perfsuite.faults.toxics import toxic_from_json

logger = logging.getLogger("perfsuite.faults")

VERSION = "2.12.0-perfsuite"
"""What ``GET /version`` reports: the Toxiproxy API version this one follows, marked as ours."""
DEFAULT_API_LISTEN = "127.0.0.1:8474"
"""Toxiproxy's default API address."""
MAX_BODY_BYTES = 1024 * 1024
"""Largest request body the API reads."""
_Handler = Callable[["_Request"], tuple[int, Any]]


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    parts: tuple[str, ...]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ApiError 400 if it is empty or malformed (as Toxiproxy)."""
        if not self.body.strip():
            raise ApiError("bad request body: EOF", 400)
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(f"bad request body: {exc}", 400) from None

    def json_object(self) -> Mapping[str, Any]:
        body = self.json()
        if not isinstance(body, Mapping):
            raise ApiError("bad request body: expected a JSON object", 400)
        return body


class ToxiproxyApi:
    """The WSGI application serving Toxiproxy's REST API over a :class:`ProxyRegistry`."""

    def __init__(self, registry: ProxyRegistry, version: str = VERSION) -> None:
        self.registry = registry
        self.version = version

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        parts = tuple(part for part in str(environ.get("PATH_INFO", "")).split("/") if part)
        try:
            if str(environ.get("HTTP_USER_AGENT", "")).startswith("Mozilla/"):
                raise ApiError("User agent not allowed", 403)
            request = _Request(method, parts, _read_body(environ))
            status, payload = self._dispatch(request)
        except ApiError as exc:
            status, payload = exc.status, exc.to_json()
        except Exception as exc:  # an answer, not a dead connection; the server keeps running
            logger.exception("fault proxy API: %s %s failed", method, "/".join(parts))
            status, payload = 500, {"error": f"internal error: {exc}", "status": 500}
        body = b"" if status == 204 else json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [body]

    def _dispatch(self, request: _Request) -> tuple[int, Any]:
        route = self._route(request.parts)
        if route is None:
            raise ApiError("not found", 404)
        handler = route.get(request.method)
        if handler is None:
            raise ApiError(f"method {request.method} not allowed here (allowed: {', '.join(route)})", 405)
        return handler(request)

    def _route(self, parts: tuple[str, ...]) -> dict[str, _Handler] | None:
        match parts:
            case ("version",):
                return {"GET": lambda r: (200, {"version": self.version})}
            case ("reset",):
                return {"POST": self._reset}
            case ("populate",):
                return {"POST": self._populate}
            case ("proxies",):
                return {"GET": self._list_proxies, "POST": self._create_proxy}
            case ("proxies", _):
                return {
                    "GET": self._show_proxy,
                    "POST": self._update_proxy,
                    "PATCH": self._update_proxy,
                    "DELETE": self._delete_proxy,
                }
            case ("proxies", _, "toxics"):
                return {"GET": self._list_toxics, "POST": self._add_toxic}
            case ("proxies", _, "toxics", _):
                return {
                    "GET": self._show_toxic,
                    "POST": self._update_toxic,
                    "PATCH": self._update_toxic,
                    "DELETE": self._delete_toxic,
                }
        return None

    def _reset(self, request: _Request) -> tuple[int, Any]:
        self.registry.reset()
        logger.info("reset: every proxy enabled, every toxic removed")
        return 204, None

    def _populate(self, request: _Request) -> tuple[int, Any]:
        body = request.json()
        if not isinstance(body, list):
            raise ApiError("bad request body: expected a JSON array of proxies", 400)
        specs = [proxy_spec_from_json(item, str(index + 1)) for index, item in enumerate(body)]
        proxies = self.registry.populate(specs)
        return 201, {"proxies": [proxy.to_json() for proxy in proxies]}

    def _list_proxies(self, request: _Request) -> tuple[int, Any]:
        return 200, {name: proxy.to_json() for name, proxy in self.registry.all().items()}

    def _create_proxy(self, request: _Request) -> tuple[int, Any]:
        proxy = self.registry.create(proxy_spec_from_json(request.json()))
        return 201, proxy.to_json()

    def _show_proxy(self, request: _Request) -> tuple[int, Any]:
        return 200, self.registry.get(request.parts[1]).to_json()

    def _update_proxy(self, request: _Request) -> tuple[int, Any]:
        self.registry.get(request.parts[1])  # 404 before 400, as Toxiproxy
        return 200, self.registry.update(request.parts[1], request.json_object()).to_json()

    def _delete_proxy(self, request: _Request) -> tuple[int, Any]:
        self.registry.remove(request.parts[1])
        return 204, None

    def _list_toxics(self, request: _Request) -> tuple[int, Any]:
        return 200, [toxic.to_json() for toxic in self.registry.get(request.parts[1]).toxics]

    def _add_toxic(self, request: _Request) -> tuple[int, Any]:
        proxy = self.registry.get(request.parts[1])
        try:
            toxic = toxic_from_json(request.json())
        except InvalidToxic as exc:
            raise ApiError(f"bad request body: {exc}", 400) from None
        return 200, proxy.add_toxic(toxic).to_json()

    def _show_toxic(self, request: _Request) -> tuple[int, Any]:
        return 200, self.registry.get(request.parts[1]).toxic(request.parts[3]).to_json()

    def _update_toxic(self, request: _Request) -> tuple[int, Any]:
        proxy = self.registry.get(request.parts[1])
        old = proxy.toxic(request.parts[3])
        try:
            new = old.updated(request.json_object())
        except InvalidToxic as exc:
            raise ApiError(f"bad request body: {exc}", 400) from None
        return 200, proxy.replace_toxic(new).to_json()

    def _delete_toxic(self, request: _Request) -> tuple[int, Any]:
        self.registry.get(request.parts[1]).remove_toxic(request.parts[3])
        return 204, None


_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
        body = stream.read(MAX_BODY_BYTES + 1)
        length = len(body)
    else:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise ApiError("bad request body: invalid Content-Length", 400) from None
        body = b""
    if length > MAX_BODY_BYTES:
        raise ApiError(f"bad request body: larger than {MAX_BODY_BYTES} bytes", 413)
    return body or (stream.read(length) if length > 0 else b"")


# -- the command -------------------------------------------------------------------------------


def _listen_address(text: str) -> str:
    try:
        host, port = parse_address(text, "--listen")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return format_address(host, port)


def _proxy_argument(text: str) -> ProxySpec:
    parts = text.split("=")
    if len(parts) != 3 or not parts[0]:
        raise argparse.ArgumentTypeError(
            f"--proxy must be NAME=LISTEN=UPSTREAM such as redis=127.0.0.1:26379=127.0.0.1:6379, got {text!r}"
        )
    try:
        return proxy_spec_from_json({"name": parts[0], "listen": parts[1], "upstream": parts[2]})
    except ApiError as exc:
        raise argparse.ArgumentTypeError(f"--proxy {text}: {exc.message}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``chaos-proxy`` flags to ``parser`` (for ``perfsuite chaos-proxy`` and ``python -m``)."""
    parser.add_argument(
        "--listen",
        type=_listen_address,
        default=DEFAULT_API_LISTEN,
        metavar="HOST:PORT",
        help=f"address of the HTTP API (default: {DEFAULT_API_LISTEN}, Toxiproxy's)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="JSON list of proxies to create at start, Toxiproxy's populate format "
        '([{"name": ..., "listen": ..., "upstream": ..., "enabled": true}])',
    )
    parser.add_argument(
        "--proxy",
        type=_proxy_argument,
        action="append",
        default=[],
        metavar="NAME=LISTEN=UPSTREAM",
        help="a proxy to create at start, e.g. redis=0.0.0.0:26379=redis:6379 (repeatable)",
    )


def load_proxy_file(path: Path) -> list[ProxySpec]:
    """The proxies of a Toxiproxy config file; ConfigError naming the file and the proxy."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: proxy config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read proxy config file: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ConfigError(f"{path}: must be a JSON list of proxies (Toxiproxy's populate format)")
    try:
        return [proxy_spec_from_json(item, str(index + 1)) for index, item in enumerate(data)]
    except ApiError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None


def serve(
    listen: str,
    proxies: Sequence[ProxySpec] = (),
    stop: gevent.event.Event | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the API on ``listen`` with ``proxies`` created, until ``stop`` is set or SIGTERM/SIGINT.

    Raises ConfigError if an address cannot be bound or two proxies share a name.
    """
    registry = ProxyRegistry()
    stop = stop or gevent.event.Event()
    host, port = parse_address(listen, "--listen")
    server = gevent.pywsgi.WSGIServer((host, port), ToxiproxyApi(registry), log=None, error_log=logger)
    handlers = []
    try:
        try:
            server.init_socket()
        except OSError as exc:
            raise ConfigError(f"cannot serve the API on {listen}: {exc.strerror or exc}") from None
        for spec in proxies:
            try:
                registry.create(spec)
            except ApiError as exc:
                raise ConfigError(f"proxy {spec.name}: {exc.message}") from None
        server.start()
        handlers = [gevent.signal_handler(sig, stop.set) for sig in (signal.SIGTERM, signal.SIGINT)]
        lines = [
            f"fault proxy API (Toxiproxy-compatible) on http://{format_address(host, server.server_port)}"
        ]
        lines += [f"  proxy {p.name}: {p.listen} -> {p.upstream}" for p in registry.all().values()]
        (announce or _print_stderr)("\n".join(lines))
        stop.wait()
    finally:
        for handler in handlers:
            handler.cancel()
        server.stop(timeout=1)
        registry.close()


def _print_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the server from parsed ``add_arguments`` flags; returns the exit code (0 on SIGTERM/SIGINT)."""
    try:
        specs: list[ProxySpec] = list(load_proxy_file(args.config)) if args.config is not None else []
        specs += list(args.proxy)
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"proxy name(s) given more than once: {', '.join(duplicates)}")
        serve(args.listen, specs)
    except PerfsuiteError as exc:
        print(f"perfsuite chaos-proxy: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m perfsuite.faults``: parse ``argv`` and :func:`run`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = _Parser(prog="perfsuite chaos-proxy", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def start_chaos_proxy(
    proxies: Sequence[str] = (),
    port: int | None = None,
    log_path: Path | None = None,
    timeout_s: float = 10.0,
) -> ManagedProcess:
    """Start ``python -m perfsuite.faults`` as a separate process with its API on a free loopback port.

    ``proxies`` are ``NAME=LISTEN=UPSTREAM`` strings. ``url`` of the result is the API's base URL.
    """
    port = port or free_port()
    args = [sys.executable, "-m", "perfsuite.faults", "--listen", f"127.0.0.1:{port}"]
    for spec in proxies:
        args += ["--proxy", spec]
    env = dict(os.environ)
    # The child runs this same perfsuite (a worktree or checkout), not whichever one is installed.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    out = open(log_path if log_path is not None else os.devnull, "wb")  # noqa: SIM115 - closed below
    try:
        with interrupt_deferred():
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    finally:
        out.close()
    url = f"http://127.0.0.1:{port}"
    managed = ManagedProcess("chaos_proxy", process, url, log_path, {"port": str(port)})
    with stopped_unless_started(managed):
        if not wait_for_http(url + "/version", timeout_s) or process.poll() is not None:
            raise FaultError(f"the fault proxy did not start on {url}: {managed.log_tail()}")
    return managed


__all__ = [
    "DEFAULT_API_LISTEN",
    "VERSION",
    "ToxiproxyApi",
    "add_arguments",
    "load_proxy_file",
    "main",
    "run",
    "serve",
    "start_chaos_proxy",
]

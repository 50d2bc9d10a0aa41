"""Tiny HTTP/1.1 keep-alive server for the collector tests: ``GET /status/<code>`` answers that code,
anything else 200. One write per response (no delayed-ACK stall). Usage: probe_server.py PORT."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/status/") else 200
        body = b"ok" if status == 200 else b"no"
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n\r\n"
        self.wfile.write(head.encode() + body)
        self.wfile.flush()

    def log_message(self, *_args: object) -> None:
        return


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), _Handler)
    server.daemon_threads = True
    server.serve_forever()

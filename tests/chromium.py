"""A headless Chromium (Debian's ``chromium``) and a small DevTools-protocol client for its one page,
for tests of anything a person looks at (the HTML report, Locust's web UI)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

SET_INPUT = """(function (name, value) {
  var el = document.querySelector('[name="' + name + '"]');
  var proto = el.tagName === 'SELECT' ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, value);
  el.dispatchEvent(new Event(el.tagName === 'SELECT' ? 'change' : 'input', {bubbles: true}));
  return el.value;
})"""
"""JS ``(name, value)``: set a React-controlled input or select as typing would; returns its value."""

CLICK = """(function (text) {
  var buttons = Array.from(document.querySelectorAll('button'));
  var button = buttons.find(function (b) { return b.innerText.trim().toUpperCase() === text; });
  if (!button) { return false; }
  button.click();
  return true;
})"""
"""JS ``(text)``: click the button whose text is ``text`` (upper case); false when there is none."""


class HeadlessChromium:
    """A headless Chromium and a small DevTools-protocol client for its one page."""

    def __init__(self, profile_dir: Path, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile_dir}",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                "--window-size=1200,900",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout_s) as reply:
            pages = [t for t in json.load(reply) if t["type"] == "page"]
        self.socket = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=timeout_s, suppress_origin=True
        )
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events seen meanwhile are kept in ``events``)."""
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        """Read messages until ``event`` arrives (bounded by the timeout)."""
        deadline = time.monotonic() + self.timeout_s
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self.events.append(json.loads(self.socket.recv()))

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(reply["exceptionDetails"])
        return reply["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and requests to anything but the file."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "warning",
                "assert",
            ):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                found.append(f"log {params['entry']['level']}: {params['entry'].get('text')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("file:", "data:", "about:")):
                    found.append(f"network request: {url}")
        return found

    def screenshot(self, path: Path) -> None:
        """A full-page PNG."""
        size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1200,
            height=int(size[1]),
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        self.call("Emulation.clearDeviceMetricsOverride")
        path.write_bytes(base64.b64decode(data))
        shots = os.environ.get("PERFSUITE_SCREENSHOT_DIR")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(shots) / path.name)

    def close(self) -> None:
        """Stop the browser."""
        if getattr(self, "socket", None) is not None:
            self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


__all__ = ["CHROMIUM", "HeadlessChromium"]


def open_custom_parameters(browser: HeadlessChromium, url: str, timeout_s: float = 20.0) -> None:
    """Open Locust's web UI at ``url`` and unfold its "Custom parameters" (the suite's options)."""
    browser.open(url.rstrip("/") + "/")
    deadline = time.monotonic() + timeout_s
    while not browser.evaluate(f"{CLICK}('CUSTOM PARAMETERS')"):
        assert time.monotonic() < deadline, "the web UI did not show its form"
        time.sleep(0.2)
    time.sleep(0.3)

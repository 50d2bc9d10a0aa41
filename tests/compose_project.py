"""This repository's docker compose project on the machine's real Docker engine, for the compose test
(and bench/bench_compose.py): whether an engine and Compose v2 answer, the local base images, and a
project run with exactly the README's commands plus one test override file.

The override file (written per project, in its own directory) only swaps what a registry would
give for images made on this machine (``scripts/docker-test-images``; no pull), publishes the ports
on free loopback ports (``!override``, Compose 2.24+) so that parallel runs never clash. The
README's variables (TWILIO_AUTH_TOKEN, WORKERS, PERFSUITE_SCENARIO, PERFSUITE_OVERRIDES, ...) come
from the environment of each ``docker compose`` command, as for a user. Every project has its own
name, so its containers, network and volumes are its own, and :meth:`ComposeProject.down` removes
them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfsuite.embedded import free_port

REPO = Path(__file__).resolve().parent.parent
BASE_FILE = REPO / "docker-compose.yml"
HEADLESS_FILE = REPO / "docker-compose.headless.yml"
PYTHON_IMAGE = "perfsuite-test/python:3.11"
REDIS_IMAGE = "perfsuite-test/redis:7"
IMAGE = "perfsuite-test/perfsuite:latest"
IMAGE_LABEL = "org.opencontainers.image.title=perfsuite"
"""The Dockerfile's label: the test prunes the dangling images it left with it."""
MIN_COMPOSE = (2, 24)
"""The oldest Compose the test runs on: ``!override`` in override files came with 2.24."""
PERFSUITE_SERVICES = ("chaos-proxy", "demo-bot", "locust-master", "locust-worker")


def _docker(*args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout_s, check=False)


def engine_problem() -> str | None:
    """None when a Docker engine answers and ``docker compose`` is Compose v2; else why not (the
    compose test skips with it)."""
    setup = "scripts/ensure-docker (run by `make test`, as root) installs and starts it"
    if shutil.which("docker") is None:
        return f"no docker command; {setup}"
    try:
        info = _docker("info", "--format", "{{.ServerVersion}}", timeout_s=20)
        compose = _docker("compose", "version", "--short", timeout_s=20)
    except subprocess.TimeoutExpired:
        return f"the Docker engine does not answer within 20 s; {setup}"
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no Docker engine answers ({last}); {setup}"
    version = re.match(r"v?(\d+)\.(\d+)", compose.stdout.strip())
    if compose.returncode != 0 or version is None:
        return f"no Compose v2 plugin (`docker compose`); {setup}"
    if (int(version.group(1)), int(version.group(2))) < MIN_COMPOSE:
        return (
            f"Compose {compose.stdout.strip()} is older than {'.'.join(map(str, MIN_COMPOSE))} (the "
            "test's override file uses `!override`); Debian trixie's docker-compose is 2.26"
        )
    return None


def ensure_base_images() -> None:
    """Make the local base images unless they are current (``scripts/docker-test-images``)."""
    done = subprocess.run(
        [str(REPO / "scripts" / "docker-test-images")], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/docker-test-images failed:\n{done.stdout}{done.stderr}")


@dataclass(frozen=True, slots=True)
class Ports:
    """Free loopback ports the project's published ports go to (8089, 8000, 8474 in the file)."""

    web: int = field(default_factory=free_port)
    bot: int = field(default_factory=free_port)
    chaos: int = field(default_factory=free_port)


def override_text(ports: Ports) -> str:
    """The test's override file: local images, no pull, free loopback ports."""
    lines = [
        "x-local: &local",
        "  build:",
        f"    context: {REPO}",
        "    args:",
        f"      PYTHON_IMAGE: {PYTHON_IMAGE}",
        f"  image: {IMAGE}",
        "  pull_policy: never",
        "services:",
    ]
    for name in ("collector-redis", "bot-redis"):
        lines += [f"  {name}:", f"    image: {REDIS_IMAGE}", "    pull_policy: never"]
    published = {"chaos-proxy": (ports.chaos, 8474), "demo-bot": (ports.bot, 8000)}
    published["locust-master"] = (ports.web, 8089)
    for name in PERFSUITE_SERVICES:
        lines += [f"  {name}:", "    <<: *local"]
        if name in published:
            host, container = published[name]
            lines.append(f'    ports: !override ["127.0.0.1:{host}:{container}"]')
    return "\n".join(lines) + "\n"


class ComposeProject:
    """One compose project of this repository: ``docker compose -p NAME -f docker-compose.yml
    [-f docker-compose.headless.yml] -f <override>`` with the README's variables."""

    def __init__(self, directory: Path, token: str, overrides: dict[str, Any], workers: int = 2) -> None:
        self.name = f"perfsuite-test-{os.getpid()}-{time.monotonic_ns() % 100000}"
        self.ports = Ports()
        self.results = directory / "results"
        self.results.mkdir(parents=True, exist_ok=True)
        self.override = directory / "docker-compose.test.yml"
        self.override.write_text(override_text(self.ports))
        self.env = {key: value for key, value in os.environ.items() if key.startswith("DOCKER_")}
        self.env |= {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
        self.env |= {
            "TWILIO_AUTH_TOKEN": token,
            "WORKERS": str(workers),
            "PERFSUITE_SCENARIO": "smoke",
            "PERFSUITE_RESULTS_DIR": str(self.results),
            "PERFSUITE_OVERRIDES": json.dumps(overrides, sort_keys=True),
        }

    def compose(
        self, *args: str, headless: bool = False, test_type: str = "webhook", timeout_s: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker compose`` on this project; ``headless`` adds docker-compose.headless.yml."""
        files = [BASE_FILE, *([HEADLESS_FILE] if headless else []), self.override]
        argv = ["docker", "compose", "-p", self.name]
        for path in files:
            argv += ["-f", str(path)]
        return subprocess.run(
            [*argv, *args],
            env={**self.env, "TEST_TYPE": test_type},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def must(self, *args: str, **kwargs: Any) -> str:
        """:meth:`compose` that must succeed; its output."""
        done = self.compose(*args, **kwargs)
        assert done.returncode == 0, f"docker compose {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    def logs(self, service: str) -> str:
        """The service's log, without colours or prefixes' padding."""
        return self.compose("logs", "--no-color", "--no-log-prefix", service, timeout_s=60).stdout

    def wait_for_log(self, service: str, text: str, timeout_s: float) -> str:
        """The service's log once it holds ``text`` (at most ``timeout_s`` seconds)."""
        deadline = time.monotonic() + timeout_s
        while text not in (log := self.logs(service)):
            assert time.monotonic() < deadline, f"{service} never logged {text!r}:\n{log[-3000:]}"
            time.sleep(0.5)
        return log

    def exit_code(self, service: str, timeout_s: float) -> int | None:
        """``docker compose wait SERVICE``: the exit code of its container (None past ``timeout_s``)."""
        try:
            done = self.compose("wait", service, headless=True, timeout_s=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        said = done.stdout + done.stderr
        found = re.search(r"exited with status code (\d+)", said)
        assert found is not None, f"docker compose wait {service}: {said}"
        return int(found.group(1))

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers."""
        return self.compose("ps", "-q", service, timeout_s=60).stdout.split()

    def hostname(self, container: str) -> str:
        """A container's hostname (what Locust and the report call its worker's host)."""
        return _docker("inspect", "--format", "{{.Config.Hostname}}", container).stdout.strip()

    def down(self) -> None:
        """``docker compose down -v --remove-orphans``: containers, network and volumes removed (every
        service's log kept first, in ``compose.log`` beside the override file, and the master's
        Locust logs in ``master-logs/``)."""
        everything = self.compose("logs", "--no-color", "--timestamps", headless=True, timeout_s=120)
        (self.override.parent / "compose.log").write_text(everything.stdout + everything.stderr)
        # the master's Locust logs (`perfsuite run` keeps them in the container, not in its output)
        self.compose("cp", "locust-master:/app/.perfsuite/logs", str(self.override.parent / "master-logs"))
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10", headless=True, timeout_s=180)
        _docker("image", "prune", "-f", "--filter", f"label={IMAGE_LABEL}", timeout_s=120)

    def leftovers(self) -> list[str]:
        """Whatever of this project still exists: containers, networks, volumes."""
        label = f"label=com.docker.compose.project={self.name}"
        found = []
        for kind, listing in (
            ("container", ["ps", "-a", "-q", "--filter", label]),
            ("network", ["network", "ls", "-q", "--filter", label]),
            ("volume", ["volume", "ls", "-q", "--filter", label]),
        ):
            found += [f"{kind} {ident}" for ident in _docker(*listing).stdout.split()]
        return found


__all__ = [
    "IMAGE",
    "PYTHON_IMAGE",
    "REDIS_IMAGE",
    "ComposeProject",
    "Ports",
    "engine_problem",
    "ensure_base_images",
    "override_text",
]

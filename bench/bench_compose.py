"""docker compose figures (not a test): the image's size, its build time cold and cached, `compose up`
to the first request, and webhooks per second with 1 and 2 worker containers against the same
number of bare local Locust worker processes, all against the same demo bot container, in one run.

Run: ``python bench/bench_compose.py [--rounds 2] [--run-s 10] [--users 40] [--no-cold]``

Needs a Docker engine with Compose v2 and the local base images (``make test`` sets both up:
``scripts/ensure-docker``, ``scripts/docker-test-images``); the project is the one
``tests/test_compose_up.py`` runs (the README's headless commands plus the local-images override).

- build, cold: ``docker compose build --no-cache`` (the base images kept: no pip cache, every
  dependency downloaded and installed); cached: the same command again with nothing changed;
- image size: ``docker image inspect``'s size of the suite's image, and of its base for reference;
- up to first request: from ``docker compose up -d`` on a project with no container yet (Redis,
  fault proxy and demo bot start and turn healthy, the master and the worker start, the probe runs)
  to the run's ``started_at`` (the load's first request), in the first 1-worker run;
- throughput: ``perfsuite run --test-type webhook`` for ``--run-s`` seconds, ``--users`` users
  without think time, no burst, (a) as the compose master with WORKERS=1 and 2 worker containers,
  (b) on this machine with ``--workers 1`` and ``2`` (a master and that many bare Locust processes)
  against the demo bot container's address on the docker bridge (signed for the bot's public URL,
  as the containers sign), collector on the compose project's Redis, the same configuration: the
  result's ``summary.rps``; a round where either side's success rate is under 0.95 is left out.
  Configurations alternate within each round; medians over rounds, and each round's ratio
  container / bare.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.compose_project import (  # noqa: E402
    IMAGE,
    PYTHON_IMAGE,
    ComposeProject,
    engine_problem,
    ensure_base_images,
)

MIN_SUCCESS_RATE = 0.95
"""Both sides of a round must have been answered as intended this often (else they did other work)."""
BOT_PUBLIC_URL = "http://demo-bot:8000/webhook/whatsapp"
"""The demo bot container's ``--public-url`` (docker-compose.yml): the URL every signature is for."""


def _image_mb(image: str) -> float:
    size = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(size.stdout.strip()) / 1e6


def _timed(project: ComposeProject, *args: str) -> float:
    started = time.monotonic()
    project.must(*args, headless=True, timeout_s=1800)
    return time.monotonic() - started


def _address(project: ComposeProject, service: str) -> str:
    (container,) = project.containers(service)
    found = subprocess.run(
        [
            "docker",
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            container,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


def _compose_run(project: ComposeProject, workers: int) -> dict[str, Any]:
    """One headless webhook run of the compose project with ``workers`` worker containers."""
    project.env["WORKERS"] = str(workers)
    project.must("up", "-d", headless=True)
    code = project.exit_code("locust-master", 600)
    assert code is not None, "the compose master did not finish"
    result: dict[str, Any] = json.loads((project.results / "webhook.json").read_text())
    return result


def _local_run(project: ComposeProject, workers: int, out: Path) -> dict[str, Any]:
    """The same run from this machine: a master and ``workers`` bare Locust processes."""
    overrides = json.loads(project.env["PERFSUITE_OVERRIDES"])
    overrides["target.public_url"] = BOT_PUBLIC_URL  # what the bot checks signatures against
    env = {
        **os.environ,
        "TWILIO_AUTH_TOKEN": project.env["TWILIO_AUTH_TOKEN"],
        "PERFSUITE_OVERRIDES": json.dumps(overrides),
        "REDIS_URL": f"redis://{_address(project, 'collector-redis')}:6379/0",
    }
    host = f"http://{_address(project, 'demo-bot')}:8000"
    argv = [sys.executable, "-m", "perfsuite", "run", "--test-type", "webhook", "--host", host]
    argv += ["--workers", str(workers), "--output-file", str(out)]
    subprocess.run(argv, env=env, cwd=REPO, capture_output=True, timeout=600, check=False)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--run-s", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--no-cold", action="store_true", help="skip the --no-cache build")
    args = parser.parse_args()
    problem = engine_problem()
    if problem is not None:
        print(f"bench_compose: {problem}", file=sys.stderr)
        return 69
    ensure_base_images()
    overrides = {
        "webhook.concurrent_users": args.users,
        "webhook.ramp_up_time": 1,
        "webhook.run_time_s": args.run_s,
        "webhook.enable_burst_testing": False,
        "webhook.think_time_s": [0, 0],
        "webhook.backlog_drain_timeout_s": 5,
    }
    with tempfile.TemporaryDirectory(prefix="bench-compose-") as tmp:
        project = ComposeProject(Path(tmp), secrets.token_hex(16), overrides, workers=1)
        try:
            cold = None if args.no_cold else _timed(project, "build", "--no-cache")
            cached = _timed(project, "build")
            print(
                f"image {IMAGE}: {_image_mb(IMAGE):.0f} MB "
                f"(base {PYTHON_IMAGE}: {_image_mb(PYTHON_IMAGE):.0f} MB)"
            )
            print(
                f"docker compose build: cold (--no-cache) {cold or float('nan'):.1f} s, cached {cached:.1f} s"
            )
            rps: dict[str, list[float]] = {}
            up_to_first_s = None
            for round_index in range(args.rounds):
                for workers in (1, 2):
                    started = time.time()
                    result = _compose_run(project, workers)
                    if up_to_first_s is None:
                        up_to_first_s = datetime.fromisoformat(result["started_at"]).timestamp() - started
                        print(
                            "docker compose up -d (no container yet) to the load's start: "
                            f"{up_to_first_s:.1f} s"
                        )
                    boxed = result["summary"]["rps"]
                    local = _local_run(project, workers, Path(tmp) / f"local-{round_index}-{workers}.json")
                    bare = local["summary"]["rps"]
                    rates = (result["summary"]["success_rate"], local["summary"]["success_rate"])
                    if min(rates) < MIN_SUCCESS_RATE:  # the bot refused or failed: not the same work
                        print(
                            f"round {round_index + 1}, {workers} worker(s): success rates {rates[0]:.3f}, "
                            f"{rates[1]:.3f}: not comparable, left out",
                            flush=True,
                        )
                        continue
                    rps.setdefault(f"containers {workers}", []).append(boxed)
                    rps.setdefault(f"bare {workers}", []).append(bare)
                    print(
                        f"round {round_index + 1}, {workers} worker(s): containers {boxed:.0f} req/s, "
                        f"bare processes {bare:.0f} req/s, ratio {boxed / bare:.2f} "
                        f"(success rates {rates[0]:.3f}, {rates[1]:.3f})",
                        flush=True,
                    )
        finally:
            project.down()
    print("\nworkers  containers req/s  bare processes req/s  ratio (median)  ratio per round")
    for workers in (1, 2):
        boxed, bare = rps.get(f"containers {workers}", []), rps.get(f"bare {workers}", [])
        if not boxed:
            print(f"{workers:>7}  no comparable round")
            continue
        ratios = [b / a for b, a in zip(boxed, bare, strict=True)]
        print(
            f"{workers:>7}  {statistics.median(boxed):>16.0f}  {statistics.median(bare):>20.0f}  "
            f"{statistics.median(ratios):>14.2f}  {', '.join(f'{r:.2f}' for r in ratios)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

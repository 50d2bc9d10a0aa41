"""Every figure survives the move to the job skeleton and ``perfsuite.result/2``.

``tests/golden/result_v1/`` holds real runs (a smoke webhook run, a small Redis benchmark, an
arrival-rate run) recorded by the suite as it was before the job skeleton: the collector's Redis
data (``before.rdb``) and the ``perfsuite.result/1`` documents it printed. Here the same stored runs
go through today's read-back, figures and checks, and the result must agree with the version-1
document key by key once that is upgraded to version 2 (``upgrade_v1``), except for what
:data:`DELIBERATE` lists (each also in CHANGELOG.md).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perfsuite import registry
from perfsuite.collect import Collected
from perfsuite.collector import CollectorReader
from perfsuite.config import SuiteConfig
from perfsuite.embedded import free_port, redis_server_binary, wait_for_port
from perfsuite.history import with_series
from perfsuite.jobs import Prepared, build_result
from perfsuite.launcher import LocustOutcome
from perfsuite.result import RunResult, upgrade_v1
from redis_bench.job import Swept
from webhook_load.figures import WebhookFigures

HERE = Path(__file__).resolve().parent / "golden" / "result_v1"
DOCUMENTS = ("webhook_v1.json", "redis_v1.json", "arrival_v1.json")

DELIBERATE = {
    "checks": "order: the collector's integrity check now comes last for every test type",
    "warnings": "the trust warning wording is unchanged; compared as a set",
    "failure_reasons": "sorted by count, most frequent first",
    "summary.duration_s": "added for the webhook test (seconds the data spans)",
}
RENAMED_CHECKS = {"invalid signatures answered 403": "invalid signatures refused (401 or 403)"}
"""Checks renamed since (issue 9: 401 and 403 both refuse by default)."""
ADDED_CHECKS = {"answers Twilio parses as TwiML (no error 12300/12100)"}
"""Checks added since (issue 9: Twilio conformance is its own check)."""
SETUP = {"config.secrets": "the recorded run had REDIS_URL set; the recomputation reads no environment"}
"""Differences that come from recomputing here, not from the suite."""


@pytest.fixture(scope="module")
def stored_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server loaded with the recorded runs (a copy of ``before.rdb``)."""
    directory = tmp_path_factory.mktemp("before")
    shutil.copy(HERE / "before.rdb", directory / "before.rdb")
    port = free_port()
    process = subprocess.Popen(
        [
            *(redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
            *("--dbfilename", "before.rdb", "--appendonly", "no", "--save", ""),
        ],
        stdout=subprocess.DEVNULL,
    )
    assert wait_for_port("127.0.0.1", port, 10)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


def _config(snapshot: dict[str, Any]) -> SuiteConfig:
    sections = set(SuiteConfig.model_fields) - {"scenarios", "secrets", "overrides"}
    return SuiteConfig.model_validate({key: value for key, value in snapshot.items() if key in sections})


def recompute(url: str, v1: dict[str, Any]) -> RunResult:
    """Today's result of the stored run that ``v1`` describes (what Locust and the post-load
    observations saw comes from the v1 document; everything else from the stored data)."""
    upgraded = upgrade_v1(v1)
    old = registry.load_result(v1)
    test_type = registry.get(v1["test_type"])
    config = _config(v1["config"])
    data = CollectorReader(url, key_prefix=config.redis.key_prefix).load(v1["run_id"])
    observed: Any = None
    if isinstance(old.figures, WebhookFigures):
        observed = old.figures.backlog
    elif v1["test_type"] == "redis":
        redis = v1["redis"]
        observed = Swept(redis["namespace"], redis["keys_left_behind"], redis["keys_removed_after_run"])
    prepared = Prepared(target=old.target, locust_host=upgraded["target"]["host"], env={}, timeout_s=1)
    outcome = LocustOutcome(returncode=0, interrupted=False, timed_out=False)
    result = build_result(test_type, config, prepared, Collected.of(data), observed, outcome)
    return with_series(result, data, config.baseline.max_intervals)


def _diff(path: str, old: Any, new: Any, out: list[str]) -> None:
    if path in DELIBERATE or path in SETUP:
        return
    if isinstance(old, dict):
        if not isinstance(new, dict):
            out.append(f"{path}: {old!r} -> {new!r}")
            return
        for key, value in old.items():
            _diff(f"{path}.{key}" if path else key, value, new.get(key, "<missing>"), out)
        return
    if isinstance(old, list):
        if not isinstance(new, list) or len(old) != len(new):
            out.append(f"{path}: {old!r} -> {new!r}")
            return
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(f"{path}[{index}]", a, b, out)
        return
    if isinstance(old, float) and isinstance(new, int | float) and not isinstance(new, bool):
        if not math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-9):
            out.append(f"{path}: {old!r} -> {new!r}")
        return
    if old != new:
        out.append(f"{path}: {old!r} -> {new!r}")


@pytest.mark.parametrize("name", DOCUMENTS)
def test_recomputed_result_agrees_with_the_version_1_document(stored_runs: str, name: str) -> None:
    """The same stored run gives the same figures, checks, grade and exit code as before."""
    v1 = json.loads((HERE / name).read_text())
    new = recompute(stored_runs, v1).to_document()
    old = upgrade_v1(v1)
    differences: list[str] = []
    _diff("", old, new, differences)
    assert not differences, "\n".join(differences)
    assert (new["grade"], new["exit_code"]) == (v1["grade"], v1["exit_code"])
    new_checks = {check["name"]: check for check in new["checks"] if check["name"] not in ADDED_CHECKS}
    old_checks = {RENAMED_CHECKS.get(check["name"], check["name"]): check for check in v1["checks"]}
    assert set(new_checks) == set(old_checks)
    for name, check in old_checks.items():
        _diff(f"checks[{name}]", {**check, "name": name}, new_checks[name], differences)
    assert set(new["warnings"]) == set(v1["warnings"])
    key = lambda row: (-row["count"], row["reason"])  # noqa: E731
    _diff(
        "failure_reasons",
        sorted(old["failure_reasons"], key=key),
        sorted(new["failure_reasons"], key=key),
        differences,
    )
    assert not differences, "\n".join(differences)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_a_version_1_file_reads_as_the_same_typed_result(name: str) -> None:
    """``compare`` and ``report`` still take version-1 result files: the upgraded document reads
    into the typed result and writes back out unchanged."""
    v1 = json.loads((HERE / name).read_text())
    result = registry.load_result(v1, name)
    assert result.figures is not None and result.run_id == v1["run_id"]
    again = registry.load_result(result.to_document(), name)
    assert again.to_document() == result.to_document()
    assert result.grade.value == v1["grade"]

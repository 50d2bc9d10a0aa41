"""The JSON result (schema perfsuite.result/2): documents validate against the JSON Schema generated
from the result models and read back into the same result."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from baseline.comparator import compare
from baseline.job import comparison_result
from baseline.sides import sides_from_file
from baseline.synthetic import SyntheticProfile, write_run
from perfsuite.config import BaselineConfig
from perfsuite.errors import ConfigError
from perfsuite.grading import Check
from perfsuite.history import RunHistory
from perfsuite.registry import json_schema, load_result
from perfsuite.result import SCHEMA, RunResult, read_json, write_json

JSON_SCHEMA = json_schema()

INPUTS = Path(__file__).resolve().parent / "golden" / "comparator" / "inputs"


def test_the_schema_is_a_valid_json_schema() -> None:
    """The published schema itself is valid draft 2020-12."""
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)
    result = JSON_SCHEMA["$defs"]["RunResult"]
    assert result["properties"]["schema"]["const"] == SCHEMA == "perfsuite.result/2"
    assert {branch["if"]["properties"]["test_type"]["const"] for branch in result["allOf"]} >= {
        "webhook",
        "redis",
    }


def test_a_stored_run_with_intervals_validates_and_round_trips(redis_url: str, tmp_path: Path) -> None:
    """`perfsuite report RUN --format json` output: valid, with intervals; reading the file back gives
    the same document."""
    write_run(redis_url, "json-run", SyntheticProfile(seconds=20, rps=20), seed=1, spill_dir=tmp_path)
    stored = RunHistory(redis_url, "perfsuite").result("json-run")
    check = Check("webhook P99 response time", 90.0, "<=", 2000.0, "ms", "4.1", critical=True)
    document = stored.model_copy(update={"checks": (check,)}).to_document()
    jsonschema.validate(document, JSON_SCHEMA)
    assert (
        document["intervals"]["schema"] == "perfsuite.intervals/1"
        and len(document["intervals"]["windows"]) == 20
    )
    write_json(document, tmp_path / "run.json")
    again = load_result(read_json(tmp_path / "run.json"))
    assert json.loads(json.dumps(again.to_document())) == json.loads(json.dumps(document))


def test_comparison_and_all_documents_validate() -> None:
    """A baseline result and an all result (with its runs) are valid documents too."""
    comparison = compare(
        sides_from_file(INPUTS / "optimized_slower.json"),
        BaselineConfig(),
        sides_from_file(INPUTS / "optimized.json"),
        history={"webhook": [sides_from_file(INPUTS / "optimized_earlier_1.json")[0].result]},
    )
    baseline = comparison_result(comparison)
    jsonschema.validate(baseline.to_document(), JSON_SCHEMA)
    part = load_result(json.loads((INPUTS / "optimized.json").read_text()))
    check = Check("webhook P99 response time", 25.3, "<=", 2000.0, "ms", "4.1", critical=True)
    part = part.model_copy(update={"checks": (check,)})
    combined = RunResult(
        test_type="all",
        run_id=part.run_id,
        scenario="golden",
        checks=baseline.checks,
        comparison=baseline.comparison,
        parts=(part,),
    )
    document = combined.to_document()
    jsonschema.validate(document, JSON_SCHEMA)
    assert document["parts"][0]["run_id"] == "golden-optimized"
    assert document["parts"][0]["grade"] == "EXCELLENT"
    assert document["grade"] == "POOR" and document["exit_code"] == 2  # worst of the part and the comparison


def test_an_all_result_file_can_be_the_baseline(tmp_path: Path) -> None:
    """A `--test-type all` result file gives one comparison side per run it holds."""
    parts = tuple(
        load_result(json.loads((INPUTS / name).read_text())) for name in ("legacy.json", "redis.json")
    )
    write_json(RunResult(test_type="all", run_id="x", parts=parts).to_document(), tmp_path / "all.json")
    sides = sides_from_file(tmp_path / "all.json")
    assert [(side.test_type, side.samples is not None) for side in sides] == [
        ("webhook", True),
        ("redis", False),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"schema": "other/1"}', "not a perfsuite result"),
        ("[1, 2]", "not a perfsuite"),
    ],
)
def test_a_file_that_is_not_a_result_is_refused_by_name(tmp_path: Path, content: str, message: str) -> None:
    """A wrong --baseline-file is a configuration error naming the flag, the file and the problem."""
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        sides_from_file(path)
    assert (
        "--baseline-file" in str(raised.value)
        and str(path) in str(raised.value)
        and message in str(raised.value)
    )
    assert raised.value.exit_code == 64

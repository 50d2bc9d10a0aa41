"""Where test types come from: Python entry points, so the core never names one.

A distribution declares its test types in its ``pyproject.toml``, as pytest and Locust plugins do::

    [project.entry-points."perfsuite.test_types"]
    webhook = "webhook_load.job:WebhookTest"

Each entry point names a :class:`~perfsuite.jobs.TestType` subclass (or instance) whose ``name``
equals the entry point's. Tests and embedding programs may also :func:`register` one directly.
This module also reads result documents back into typed results (each type's figures model) and
generates the JSON Schema of ``perfsuite.result/2`` from the models.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel

from perfsuite.errors import ConfigError
from perfsuite.jobs import TestType
from perfsuite.result import SCHEMA, RawFigures, RunResult, as_current
from perfsuite.sections import Section

logger = logging.getLogger(__name__)

GROUP = "perfsuite.test_types"
"""Entry point group of test types."""

COMPOSITE_TYPES = ("baseline", "all")
"""``--test-type`` values that are not test types of their own: the comparison, and every type
followed by the comparison."""

_registered: dict[str, TestType] = {}


@functools.cache
def _discovered() -> dict[str, TestType]:
    found: dict[str, TestType] = {}
    for entry in entry_points(group=GROUP):
        try:
            loaded = entry.load()
            test_type = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:  # a broken plugin must not take the CLI down with it
            logger.warning("perfsuite: test type %r (%s) cannot be loaded: %s", entry.name, entry.value, exc)
            continue
        if not isinstance(test_type, TestType) or test_type.name != entry.name:
            logger.warning(
                "perfsuite: entry point %r is not a TestType named %r; ignored", entry.value, entry.name
            )
            continue
        found[entry.name] = test_type
    return found


def register(test_type: TestType) -> None:
    """Make ``test_type`` available in this process (as if an entry point declared it)."""
    if test_type.name in COMPOSITE_TYPES:
        raise ConfigError(f"test type name {test_type.name!r} is reserved")
    _registered[test_type.name] = test_type


def test_types() -> list[TestType]:
    """Every available test type, in run order."""
    merged = {**_discovered(), **_registered}
    return sorted(merged.values(), key=lambda t: (t.order, t.name))


def find(name: str) -> TestType | None:
    """The test type called ``name``, or None."""
    return _registered.get(name) or _discovered().get(name)


def get(name: str) -> TestType:
    """The test type called ``name``; ConfigError naming the available ones otherwise."""
    found = find(name)
    if found is None:
        available = ", ".join(t.name for t in test_types()) or "none installed"
        raise ConfigError(f"--test-type {name}: no such test type (available: {available}, baseline, all)")
    return found


def _figures(test_type: str, raw: Any) -> BaseModel | None:
    if raw is None:
        return None
    found = find(test_type)
    if found is None or not isinstance(raw, Mapping):
        return RawFigures.model_validate(raw if isinstance(raw, Mapping) else {"value": raw})
    return found.figures_model.model_validate(raw)


def load_result(document: Any, source: str = "result") -> RunResult:
    """A typed result from a ``perfsuite.result/2`` (or ``/1``) document; ConfigError naming
    ``source`` when it is not one."""
    current = as_current(document, source)
    try:
        parts = tuple(
            load_result(part, f"{source}: parts[{i}]") for i, part in enumerate(current.get("parts") or [])
        )
        plain = {key: value for key, value in current.items() if key not in ("figures", "parts")}
        for computed in ("grade", "exit_code"):
            plain.pop(computed, None)
        summary = dict(plain.get("summary") or {})
        for computed in ("success_rate", "failure_rate"):
            summary.pop(computed, None)
        plain["summary"] = summary
        plain["endpoints"] = [
            {k: v for k, v in row.items() if k not in ("success_rate", "failure_rate")}
            for row in plain.get("endpoints") or []
        ]
        if isinstance(plain.get("collector"), Mapping):
            plain["collector"] = {k: v for k, v in plain["collector"].items() if k not in ("exact", "lost")}
        result = RunResult.model_validate(plain)
        figures = _figures(result.test_type, current.get("figures"))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: malformed perfsuite result ({exc})") from None
    return result.model_copy(update={"figures": figures, "parts": parts})


def sections_of(result: RunResult) -> list[Section]:
    """The report sections of ``result``'s test type (none for an unknown type or no figures)."""
    found = find(result.test_type)
    if found is None or result.figures is None or isinstance(result.figures, RawFigures):
        return []
    return found.sections(result)


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of ``perfsuite.result/2`` documents, generated from the models:
    the result model, with ``figures`` constrained by each installed test type's figures model."""
    schema = RunResult.model_json_schema(mode="serialization", by_alias=True)
    definitions = schema["$defs"]
    definitions.pop("BaseModel", None)
    result = definitions["RunResult"]
    result["properties"]["figures"] = {"anyOf": [{"type": "object"}, {"type": "null"}]}
    branches = []
    for test_type in test_types():
        model = test_type.figures_model
        figures = model.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
        definitions.update(figures.pop("$defs", {}))
        definitions[model.__name__] = figures
        branches.append(
            {
                "if": {"properties": {"test_type": {"const": test_type.name}}, "required": ["test_type"]},
                "then": {
                    "properties": {
                        "figures": {"anyOf": [{"$ref": f"#/$defs/{model.__name__}"}, {"type": "null"}]}
                    }
                },
            }
        )
    if branches:
        result["allOf"] = branches
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://perfsuite.invalid/schema/perfsuite.result-2.json",
        "title": SCHEMA,
        **schema,
    }


__all__ = [
    "COMPOSITE_TYPES",
    "GROUP",
    "find",
    "get",
    "json_schema",
    "load_result",
    "register",
    "sections_of",
    "test_types",
]

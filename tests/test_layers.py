"""The layering in DESIGN.md, enforced from the import graph (every import, lazy ones included).

- the core (``perfsuite``, but its command line) never imports the layers above it: test types
  come through the registry (entry points), never by name;
- the command line names no test type either (it may use the comparator, ``baseline``);
- ``baseline`` reads the collector, never the load code: no Locust, no locustfile, no test type;
- a test type's job module (what the registry loads in the ``perfsuite`` process) never imports
  Locust, which monkey-patches the process; test types do not import one another;
- ``demo_bot`` (the system under test) imports nothing of the suite.
"""

from __future__ import annotations

import ast
import functools
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (
    "perfsuite",
    "webhook_load",
    "redis_bench",
    "baseline",
    "locustfiles",
    "demo_bot",
    "capacity",
    "abtest",
)
TEST_TYPE_PACKAGES = ("webhook_load", "redis_bench", "capacity", "abtest")
UPPER = (*TEST_TYPE_PACKAGES, "baseline", "locustfiles", "demo_bot")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of the suite's packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            found[_module_name(path)] = path
    return found


@functools.cache
def imports_of(module: str) -> frozenset[str]:
    """Dotted names ``module`` imports anywhere in its file (relative imports resolved)."""
    path = modules()[module]
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _own(name: str) -> str | None:
    """The suite module ``name`` refers to (itself or its nearest package), or None."""
    while name:
        if name in modules():
            return name
        name = name.rpartition(".")[0]
    return None


@functools.cache
def closure(module: str) -> frozenset[str]:
    """Everything ``module`` imports, transitively through the suite's own modules (third-party
    names included, not followed)."""
    seen: set[str] = set()
    stack = [module]
    while stack:
        current = stack.pop()
        for name in imports_of(current):
            if name in seen:
                continue
            seen.add(name)
            own = _own(name)
            if own is not None and own not in seen:
                seen.add(own)
                stack.append(own)
    return frozenset(seen)


def _top(name: str) -> str:
    return name.split(".")[0]


def _offending(module: str, forbidden: tuple[str, ...], transitive: bool = False) -> list[str]:
    names = closure(module) if transitive else imports_of(module)
    return sorted(name for name in names if _top(name) in forbidden)


def core_modules() -> list[str]:
    return sorted(
        m for m in modules() if _top(m) == "perfsuite" and m not in ("perfsuite.cli", "perfsuite.__main__")
    )


@pytest.mark.parametrize("module", core_modules())
def test_the_core_never_imports_the_layers_above_it(module: str) -> None:
    """perfsuite's core finds test types through the registry; it names none of them."""
    assert _offending(module, UPPER) == []


def test_the_command_line_names_no_test_type() -> None:
    """The CLI takes test types from the registry and never imports their packages."""
    assert _offending("perfsuite.cli", (*TEST_TYPE_PACKAGES, "locustfiles", "demo_bot")) == []


@pytest.mark.parametrize("module", sorted(m for m in modules() if _top(m) == "baseline"))
def test_baseline_never_imports_locust_or_the_load_code(module: str) -> None:
    """The comparator reads the collector and typed results; Locust and load code stay out of it,
    transitively."""
    assert (
        _offending(module, ("locust", "locustfiles", *TEST_TYPE_PACKAGES, "demo_bot"), transitive=True) == []
    )


def _entry_points() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(project["project"]["entry-points"]["perfsuite.test_types"])


@pytest.mark.parametrize(("name", "target"), sorted(_entry_points().items()))
def test_a_test_type_job_loads_without_locust_or_other_types(name: str, target: str) -> None:
    """What the registry imports in the perfsuite process pulls in no Locust (it monkey-patches
    the process) and no other test type, baseline or locustfile."""
    module = target.partition(":")[0]
    package = _top(module)
    others = tuple(p for p in TEST_TYPE_PACKAGES if p != package)
    assert _offending(module, ("locust", "locustfiles", "baseline", *others), transitive=True) == []


@pytest.mark.parametrize("module", sorted(m for m in modules() if _top(m) == "demo_bot"))
def test_the_demo_bot_imports_nothing_of_the_suite(module: str) -> None:
    """The system under test shares no code with the tool that judges it."""
    assert _offending(module, tuple(p for p in PACKAGES if p != "demo_bot")) == []


def test_the_graph_sees_lazy_imports() -> None:
    """The checker itself: imports inside functions count (the CLI imports baseline lazily)."""
    assert "baseline.job" in imports_of("perfsuite.cli")

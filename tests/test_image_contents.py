"""The docker image cannot forget a package: it installs the wheel that pyproject.toml's package list
builds (no hand-kept COPY line per package), from the build context that .dockerignore leaves. Built
here for real, from a copy of that context, without a container engine."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.compose_project import REPO

NOT_SHIPPED = {"tests", "bench"}
"""Top-level packages that are not part of the product (pyproject leaves them out on purpose)."""


def _ignored_names() -> list[str]:
    """.dockerignore's patterns, as names (every pattern here is a top-level name or ``**/name``)."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip().removeprefix("**/") for line in lines if line.strip() and not line.startswith("#")]


def _build_context(into: Path) -> Path:
    """A copy of what ``docker build`` receives: the checkout minus .dockerignore's patterns."""
    patterns = _ignored_names()

    def ignore(_directory: str, names: list[str]) -> set[str]:
        return {name for name in names if any(fnmatch.fnmatch(name, p) for p in patterns)}

    return Path(shutil.copytree(REPO, into, ignore=ignore))


def test_the_wheel_the_image_installs_holds_every_package_and_entry_point(tmp_path: Path) -> None:
    """Every top-level package of the checkout (a directory with __init__.py, but tests and bench)
    is in the wheel built from the docker build context, and so is the module of every entry point
    (each test type, the console script); scenarios.yaml, which the image copies, is in the context."""
    context = _build_context(tmp_path / "context")
    assert (context / "scenarios.yaml").is_file() and (context / "pyproject.toml").is_file()
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist", "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = (context / "dist").glob("perfsuite-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        declared = archive.read(entry_points).decode()
    shipped = {name.split("/")[0] for name in names if name.endswith("/__init__.py")}
    packages = {path.parent.name for path in REPO.glob("*/__init__.py")} - NOT_SHIPPED
    assert packages <= shipped, f"left out of the wheel: {sorted(packages - shipped)}"
    modules = re.findall(r"=\s*([\w.]+):", declared)
    assert {"perfsuite.__main__", "webhook_load.job", "capacity.job", "redis_bench.job"} <= set(modules)
    for module in modules:
        path = module.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, f"entry point module {module} missing"
    assert any(name.startswith("locustfiles/") and name.endswith("webhook.py") for name in names)


def test_the_dockerfile_installs_the_wheel_not_a_list_of_folders() -> None:
    """The Dockerfile builds the wheel from the whole context and copies from the checkout only
    pyproject.toml (for the cached dependency layer) and scenarios.yaml: no package folder by name,
    which is how webhook_load/ and capacity/ were once left out of the image."""
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip wheel" in dockerfile and re.search(r"pip install .*\.whl", dockerfile)
    sources = [
        line.split()[1:-1]
        for line in dockerfile.splitlines()
        if line.startswith("COPY") and "--from=" not in line
    ]
    assert sorted(source for parts in sources for source in parts) == [
        ".",
        "pyproject.toml",
        "scenarios.yaml",
    ]
    assert "ENV PERFSUITE_CONFIG=/app/scenarios.yaml" in dockerfile

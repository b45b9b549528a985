"""Data flows one way: no stage of the pipeline imports a later one (imports inside functions count too)."""

import pytest

from tests.imports import PACKAGE_ROOT, imported_modules

# suite -> datasets -> masks -> train (models) -> evaluate (benchmarks) -> results -> reports; the apps use models
STAGES = ["datasets", "masks", "models", "benchmarks", "reports", "apps"]
# DESIGN.md's pipeline: "shards -> loader (+ masks) -> models": the loader is where images meet their masks
DESIGNED = {("datasets/loader.py", "masks"), ("datasets/stream.py", "masks")}


def _backward(stage: str, relative: str, module: str) -> bool:
    """Whether ``module``, imported by file ``relative`` of ``stage``, belongs to a later stage."""
    parts = module.split(".")
    if parts[0] != "inpaintbench" or len(parts) < 2 or parts[1] not in STAGES:
        return False
    return STAGES.index(parts[1]) > STAGES.index(stage) and (relative, parts[1]) not in DESIGNED


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_imports_a_later_one(stage):
    found = {}
    for path in sorted((PACKAGE_ROOT / stage).rglob("*.py")):
        relative = path.relative_to(PACKAGE_ROOT).as_posix()
        bad = sorted(m for m in imported_modules(path) if _backward(stage, relative, m))
        if bad:
            found[relative] = bad
    assert found == {}


def test_an_import_inside_a_function_is_seen(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..reports.markdown import write_report\n")
    modules = imported_modules(probe, "inpaintbench.benchmarks")
    assert any(_backward("benchmarks", "benchmarks/probe.py", m) for m in modules)
    assert not any(_backward("reports", "reports/probe.py", m) for m in modules)

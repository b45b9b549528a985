"""Data flows one way: the reports read the results layout, never the harness."""

import subprocess
import sys

from tests.imports import PACKAGE_ROOT, imported_modules

REPORTS = PACKAGE_ROOT / "reports"


def _imported_modules(path):
    return imported_modules(path, "inpaintbench.reports")


def test_the_ast_scan_sees_relative_and_nested_imports(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from ..benchmarks.harness import run_suite\n"
                      "    from ..benchmarks import harness\n")
    found = _imported_modules(source)
    assert "inpaintbench.benchmarks.harness" in found
    assert "inpaintbench.benchmarks.harness.run_suite" in found


def test_no_report_module_imports_the_harness():
    offenders = {}
    for path in sorted(REPORTS.glob("*.py")):
        bad = {m for m in _imported_modules(path)
               if m.startswith(("inpaintbench.benchmarks.harness", "inpaintbench.benchmarks.run_suite",
                                "inpaintbench.benchmarks.evaluate_checkpoint"))}
        if bad:
            offenders[path.name] = sorted(bad)
    assert not offenders, f"reports import the harness: {offenders}"


def test_importing_the_reports_does_not_load_the_harness():
    code = ("import sys, inpaintbench.reports.markdown, inpaintbench.reports.figures, inpaintbench.reports.tables\n"
            "print('inpaintbench.benchmarks.harness' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

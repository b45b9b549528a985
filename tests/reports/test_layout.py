"""Data flows one way: the reports read the results layout, never the harness."""

import ast
import subprocess
import sys
from pathlib import Path

import inpaintbench

REPORTS = Path(inpaintbench.__file__).parent / "reports"


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, resolved to its absolute name (relative imports included)."""
    package = "inpaintbench.reports"
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


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

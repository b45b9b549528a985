"""The modules a source file imports, read from its syntax tree (no code of it runs)."""

import ast
from pathlib import Path

import inpaintbench

PACKAGE_ROOT = Path(inpaintbench.__file__).parent


def package_of(path: Path) -> str:
    """The dotted package a file of inpaintbench belongs to (``inpaintbench.models`` for models/unet.py)."""
    relative = path.resolve().relative_to(PACKAGE_ROOT.resolve())
    return ".".join(("inpaintbench", *relative.parts[:-1]))


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Every module a file imports, resolved to its absolute name: relative imports and imports inside functions
    included, and ``from x import y`` counted as both ``x`` and ``x.y``."""
    package = package or package_of(path)
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

"""Shared output of the speed scripts: a caption and a markdown table, printed and optionally written."""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate


def emit(caption: str, headers: list[str], rows: list[list[str]], out: Path | None) -> str:
    """Print ``caption`` and the table; also write them to ``out`` when given. Returns the text."""
    text = "\n".join([caption, "", tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""])
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return text

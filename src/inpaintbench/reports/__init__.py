"""Reports: tables, figures and the generated markdown report."""

from .markdown import write_report

__all__ = ["write_report"]

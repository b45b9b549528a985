"""Writing files so that a failure names the file and leaves nothing half-written behind.

Every writer of the package that must never leave a torn file writes under a temporary name in the same folder
(``<name>.partial-<pid>``: two processes never share one) and renames it over the target, which is atomic on
POSIX filesystems. An ``OSError`` on the way (a full disk, a read-only folder, a quota) becomes a one-line
:class:`~._registry.InpaintbenchError` that names the file, the operation and the cause, and the temporary
file or folder is removed.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._registry import InpaintbenchError

__all__ = ["PARTIAL", "AlreadyThere", "atomic_folder", "atomic_write", "discard_tree", "named_os_errors",
           "os_error_cause", "partial_name", "remove_stale_partials"]

PARTIAL = ".partial"  # the marker of a temporary name; nothing with it in its name is ever read as data


class AlreadyThere(Exception):  # noqa: N818 (not an error: another process finished the same work first)
    """Raised by :func:`atomic_folder` with ``replace=False`` when the folder appeared while ours was written."""


def partial_name(path: Path) -> Path:
    """The temporary name this process writes ``path`` under before renaming it into place."""
    return path.with_name(f"{path.name}{PARTIAL}-{os.getpid()}")


def os_error_cause(err: OSError) -> str:
    """The cause of an OS error in words, with its errno name: ``No space left on device (ENOSPC)``."""
    name = errno.errorcode.get(err.errno or -1)
    return f"{err.strerror} ({name})" if err.strerror and name else str(err)


@contextmanager
def named_os_errors(operation: str, path: str | Path) -> Iterator[None]:
    """Turn an ``OSError`` raised inside into a one-line error naming ``operation``, ``path`` and the cause.

    Example:
        >>> with named_os_errors("writing the run table", "out/results.parquet"):  # doctest: +SKIP
        ...     frame.to_parquet("out/results.parquet")

    """
    try:
        yield
    except OSError as err:
        where = err.filename if err.filename and str(err.filename) != str(path) else None
        detail = f" ({where})" if where else ""
        raise InpaintbenchError(f"{operation} {path} failed: {os_error_cause(err)}{detail}") from None


def atomic_write(path: str | Path, write: Callable[[Path], Any], operation: str = "writing") -> Path:
    """Write ``path`` through ``write(temporary_path)`` and rename it into place; return ``path``.

    Raises:
        InpaintbenchError: naming the file, the operation and the cause when writing fails; the temporary file
            is removed and ``path`` keeps its previous content.

    """
    path = Path(path)
    tmp = partial_name(path)
    try:
        with named_os_errors(operation, path):
            write(tmp)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextmanager
def atomic_folder(path: str | Path, operation: str = "writing", replace: bool = True) -> Iterator[Path]:
    """A temporary folder to fill; on success it is renamed to ``path``, so its content appears at once or not at all.

    Args:
        path: the folder's final name.
        operation: what is being done, for the error message ("writing the mask set").
        replace: discard a folder already at ``path``; with False, a folder that appeared there meanwhile (another
            process doing the same work) is kept and :class:`AlreadyThere` is raised.

    Yields:
        The temporary folder.

    Raises:
        InpaintbenchError: naming the folder, the operation and the cause when writing fails; the temporary
            folder is removed.
        AlreadyThere: with ``replace=False``, when ``path`` exists at the end.

    """
    path = Path(path)
    tmp = partial_name(path)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with named_os_errors(operation, path):
            tmp.mkdir(parents=True)
            yield tmp
            if replace and path.exists():
                discard_tree(path)
            try:
                os.replace(tmp, path)
            except OSError as err:
                if not replace and err.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise AlreadyThere(str(path)) from None
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def discard_tree(path: str | Path) -> None:
    """Remove a folder, first renaming it aside so that no reader ever sees it half-deleted."""
    path = Path(path)
    aside = path.with_name(f"{path.name}{PARTIAL}-discard-{os.getpid()}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:  # someone else removed it first
        return
    shutil.rmtree(aside, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_partials(folder: str | Path, prefix: str = "") -> list[Path]:
    """Remove the temporary files and folders in ``folder`` left by processes that died (SIGKILL, power loss).

    Only names with the ``.partial`` marker are touched, and only those whose writer is no longer alive (the
    pid in the name), so a concurrent writer's temporary files are left alone. Returns what was removed.
    """
    folder = Path(folder)
    removed = []
    for path in folder.glob(f"{prefix}*{PARTIAL}*") if folder.is_dir() else []:
        tail = path.name.rsplit("-", 1)[-1]
        if tail.isdigit() and int(tail) != os.getpid() and _pid_alive(int(tail)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed

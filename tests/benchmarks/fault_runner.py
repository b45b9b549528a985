"""A launcher for fault injection: runs `inpaintbench` commands in forked children and kills them with SIGKILL.

It imports the package once, then serves requests on stdin (one JSON object a line) and answers on stdout (one
JSON object a line), so each attempt starts in milliseconds instead of paying torch's import again. A request:

    {"cwd": "...", "argv": ["bench", "s.toml"],
     "kill": null | {"op": N, "kind": null | "os.replace", "torn": false} | {"after": SECONDS}}

``op`` kills the child with SIGKILL just before its N-th file operation (a rename, a file write, a PNG or
parquet or torch or safetensors save, a tar member, a folder removal, a training step, a log row), or its N-th
of one ``kind``; with ``torn`` a write is first done halfway (a torn write, as a crash mid-write leaves).
``after`` kills it from outside after that many seconds. The answer gives the exit code or the signal, the
number of operations, and the point of the kill (the operation it stopped at, from the child's operation log).
Every child runs with one torch thread.

Test support only: nothing here is part of the package.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import signal
import sys
import time
from pathlib import Path

OPS_LOG = ".fault-ops.log"


def _instrument(kill_at: int | None, kind: str | None, torn: bool, log_path: Path) -> None:
    """Wrap the file operations of this (child) process: count, log, and SIGKILL at operation ``kill_at``.

    With ``kind`` (an operation name such as ``os.replace``), ``kill_at`` counts only the operations of that kind.
    """
    import pathlib
    import shutil
    import tarfile

    import pandas as pd
    import PIL.Image
    import safetensors.torch
    import torch

    train = importlib.import_module("inpaintbench.models.train")  # the package exports a function of that name
    run_logs = importlib.import_module("inpaintbench.models.run_logs")

    log = open(log_path, "a", buffering=1)
    count = [0]
    counted = [0]

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def point(name: str, target: object, data=None) -> None:
        count[0] += 1
        log.write(f"{count[0]}\t{name}\t{target}\n")
        counted[0] += kind is None or name == kind
        if kill_at is not None and counted[0] == kill_at and (kind is None or name == kind):
            if torn and data is not None and isinstance(target, (str, os.PathLike)):
                content = data()
                with open(target, "wb") as f:  # a torn write: half the bytes, then the crash
                    f.write(content[: len(content) // 2])
            die()

    def wrap(owner: object, attr: str, name: str, render=None) -> None:
        """Wrap ``owner.attr``; ``render(real, *args)`` gives (target, a function making the bytes, or None)."""
        real = getattr(owner, attr)

        def wrapped(*args, **kwargs):
            target, data = (render(real, *args, **kwargs) if render else (args[0] if args else "", None))
            point(name, target, data)
            return real(*args, **kwargs)

        setattr(owner, attr, wrapped)

    def in_memory(real, target, call):
        """(target, the bytes ``call`` writes into a buffer), for torn writes of file paths only."""
        if not isinstance(target, (str, os.PathLike)):
            return "<stream>", None

        def data() -> bytes:
            buf = io.BytesIO()
            call(buf)
            return buf.getvalue()

        return target, data

    def path_bytes(real, self, data, *a, **k):
        return self, lambda: data if isinstance(data, bytes) else str(data).encode()

    def image_bytes(real, self, fp, *a, **k):
        fmt = k.get("format") or PIL.Image.registered_extensions().get(Path(str(fp)).suffix, "PNG")
        return in_memory(real, fp, lambda buf: real(self, buf, format=fmt))

    def parquet_bytes(real, self, path, *a, **k):
        return in_memory(real, path, lambda buf: real(self, buf, *a, **k))

    def torch_bytes(real, obj, f, *a, **k):
        return in_memory(real, f, lambda buf: real(obj, buf, *a, **k))

    def safetensors_bytes(real, tensors, filename, metadata=None):
        return filename, lambda: safetensors.torch.save(tensors, metadata=metadata)

    wrap(os, "replace", "os.replace", lambda real, src, dst, *a, **k: (f"{src} -> {dst}", None))
    wrap(shutil, "rmtree", "shutil.rmtree")
    wrap(pathlib.Path, "write_bytes", "write_bytes", path_bytes)
    wrap(pathlib.Path, "write_text", "write_text", path_bytes)
    wrap(pathlib.Path, "unlink", "unlink", lambda real, self, *a, **k: (self, None))
    wrap(pathlib.Path, "mkdir", "mkdir", lambda real, self, *a, **k: (self, None))
    wrap(PIL.Image.Image, "save", "png", image_bytes)
    wrap(pd.DataFrame, "to_parquet", "parquet", parquet_bytes)
    wrap(torch, "save", "torch.save", torch_bytes)
    wrap(safetensors.torch, "save_file", "safetensors", safetensors_bytes)
    wrap(tarfile.TarFile, "addfile", "tar member", lambda real, self, info, *a, **k: (f"{self.name}:{info.name}", None))
    wrap(train, "train_step", "train step", lambda real, model, groups, image, mask, step, *a, **k: (step, None))
    wrap(run_logs.RunLogs, "write", "log row", lambda real, self, step, *a, **k: (step, None))


def _child(request: dict) -> None:
    """Run one command in this forked child, with its faults; never returns."""
    try:
        os.chdir(request["cwd"])
        out = os.open(".fault-output.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        import torch

        torch.set_num_threads(1)
        kill = request.get("kill") or {}
        _instrument(kill.get("op"), kill.get("kind"), bool(kill.get("torn")), Path(OPS_LOG))
        from inpaintbench.cli import main

        code = main(list(request["argv"]))
    except BaseException:  # the child must never return into the launcher's loop
        import traceback

        traceback.print_exc()
        code = 3
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _last_op(path: Path, skip: int) -> tuple[int, str]:
    """(operations logged, the last one) of the attempt whose log lines start after line ``skip``."""
    lines = path.read_text().splitlines()[skip:] if path.exists() else []
    return len(lines), (lines[-1].split("\t", 1)[1].replace("\t", " ") if lines else "before any file operation")


def serve() -> None:
    """Answer requests until stdin closes."""
    import inpaintbench.benchmarks.harness  # noqa: F401  (the imports every attempt would otherwise pay)
    import inpaintbench.cli  # noqa: F401
    import inpaintbench.reports.markdown  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        log = Path(request["cwd"]) / OPS_LOG
        before = len(log.read_text().splitlines()) if log.exists() else 0
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(request)
        after = (request.get("kill") or {}).get("after")
        if after is not None:
            deadline = start + after
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.01)
            else:
                os.kill(pid, signal.SIGKILL)
                done, status = os.waitpid(pid, 0)
        else:
            done, status = os.waitpid(pid, 0)
        ops, last = _last_op(log, before)
        answer = {"rc": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                  "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                  "ops": ops, "point": last, "elapsed": round(time.monotonic() - start, 3)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()

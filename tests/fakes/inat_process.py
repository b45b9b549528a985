"""The fake iNaturalist servers as a standalone process, for benchmarks and tests that need them out of process.

    python -m tests.fakes.inat_process --counts 118552=300,47144=300,3=300 --photo-latency 0.02 --port-file F

The process writes ``--port-file`` (``api_url``, ``photo_base``, ``pid``, ``observations``, ``photos``) once both
hosts listen, serves until SIGTERM or SIGINT, then writes ``--log-file``. :func:`read_port_file` waits for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from tests.fakes.inat_faults import Faults
from tests.fakes.inat_server import FakeINat
from tests.fakes.inat_world import make_world


def parse_counts(text: str) -> dict[int, int]:
    """Parse ``"118552=300,47144=300,3=300"`` into ``{118552: 300, 47144: 300, 3: 300}``."""
    counts = {}
    for item in text.split(","):
        if item.strip():
            key, _, value = item.partition("=")
            counts[int(key)] = int(value)
    return counts


def read_port_file(path: str | os.PathLike, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> dict:
    """Wait for a standalone server's port file and return it (``api_url``, ``photo_base``, ``pid``, ...).

    Args:
        path: the ``--port-file`` given to the server.
        timeout: seconds to wait.
        proc: the server process, to fail fast if it exits.

    Returns:
        The decoded JSON.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as fh:
                return json.load(fh)
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"fake iNat server exited with {proc.returncode} before writing {path}")
        time.sleep(0.02)
    raise TimeoutError(f"no port file at {path} after {timeout} s")


def _build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tests.fakes.inat_process", description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="118552=300,47144=300,3=300", help="class taxon=count list")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photo-latency", type=float, default=0.0, help="seconds per photo request")
    ap.add_argument("--api-latency", type=float, default=0.0, help="seconds per API request")
    ap.add_argument("--port-file", help="write {api_url, photo_base, pid, observations, photos} JSON here")
    ap.add_argument("--faults", type=float, default=0.0, help="Faults.everything(P)")
    ap.add_argument("--fault", action="append", default=[], metavar="NAME=P", help="one fault probability")
    ap.add_argument("--slow-seconds", type=float, default=30.0)
    ap.add_argument("--retry-after", type=int, default=1)
    ap.add_argument("--max-consecutive-faults", type=int, default=2)
    ap.add_argument(
        "--prewarm",
        default="medium",
        help="comma list of photo sizes to generate before the port file is written ('' for none; default medium)",
    )
    ap.add_argument("--log-file", help="on SIGTERM/SIGINT, write api_log and photo_log here as JSON")
    return ap


async def _serve(args: argparse.Namespace) -> None:
    faults = Faults.everything(
        args.faults,
        slow_seconds=args.slow_seconds,
        retry_after=args.retry_after,
        max_consecutive_faults=args.max_consecutive_faults,
    )
    for item in args.fault:
        name, _, value = item.partition("=")
        if not hasattr(faults, name):
            raise SystemExit(f"unknown fault {name!r}")
        setattr(faults, name, float(value))
    world = make_world(parse_counts(args.counts), seed=args.seed)
    fake = FakeINat(
        world, faults=faults, seed=args.seed, photo_latency=args.photo_latency, api_latency=args.api_latency
    )
    if args.prewarm:
        fake.prewarm([s.strip() for s in args.prewarm.split(",") if s.strip()])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await fake.start()
    try:
        if args.port_file:
            info = {
                "api_url": fake.api_url,
                "photo_base": fake.photo_base,
                "pid": os.getpid(),
                "observations": len(world),
                "photos": len(fake.photo_ids()),
            }
            tmp = f"{args.port_file}.tmp{os.getpid()}"
            with open(tmp, "w") as fh:
                json.dump(info, fh)
            os.replace(tmp, args.port_file)
        print(json.dumps({"api_url": fake.api_url, "photo_base": fake.photo_base}), flush=True)
        await stop.wait()
    finally:
        await fake.stop()
        if args.log_file:
            with open(args.log_file, "w") as fh:
                json.dump({"api_log": fake.api_log, "photo_log": fake.photo_log}, fh)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake servers until SIGTERM/SIGINT (see ``--help``)."""
    asyncio.run(_serve(_build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

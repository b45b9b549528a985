"""Plain HTTP downloads of official archives: resumable, verified, and never half-written under the final name.

Bytes go to ``<name>.partial``; an interrupted transfer (a dropped connection, a killed process) resumes
from there with a Range request, and the file is renamed only after its md5 matches the official checksum.
A server that answers with an HTML page instead of the archive (Google Drive's quota or virus-scan page
is the classic case for CelebA) is refused with a clear error.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import requests
from tqdm import tqdm

from .._registry import InpaintbenchError

CHUNK = 1 << 20  # for hashing
NET_CHUNK = 1 << 16  # small network reads: what arrived before a drop is on disk, ready to resume
USER_AGENT = "inpaintbench dataset builder (python-requests)"


def md5sum(path: Path) -> str:
    """md5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _looks_like_html(first_bytes: bytes, content_type: str) -> bool:
    head = first_bytes.lstrip()[:64].lower()
    return content_type.startswith("text/html") or head.startswith((b"<!doctype html", b"<html"))


def download(url: str, dest: str | Path, md5: str | None = None, retries: int = 5, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (resuming a ``.partial`` file), verify its md5, then rename it into place.

    Args:
        url: the file's address.
        dest: final path; an existing file with the right md5 is kept as it is.
        md5: the official checksum (hex); None skips verification.
        retries: attempts after a dropped connection, each resuming where the last stopped.
        timeout: seconds without data before an attempt fails.

    Raises:
        InpaintbenchError: an HTML page instead of the file, an HTTP error, a wrong checksum, or too many
            dropped connections. A wrong checksum deletes the partial file (the next run starts over).

    """
    dest = Path(dest)
    if dest.is_file() and (md5 is None or md5sum(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    for _attempt in range(retries + 1):
        offset = partial.stat().st_size if partial.exists() else 0
        headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={offset}-"} if offset else {})}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
                if response.status_code == 416:  # nothing left to fetch: the partial file is complete
                    break
                if response.status_code >= 400:
                    raise InpaintbenchError(f"{url} answered HTTP {response.status_code}")
                if offset and response.status_code != 206:  # the server ignored the range: start over
                    offset = 0
                chunks = response.iter_content(NET_CHUNK)
                first = next(chunks, b"")
                if offset == 0 and _looks_like_html(first, response.headers.get("Content-Type", "")):
                    partial.unlink(missing_ok=True)
                    raise InpaintbenchError(f"{url} returned an HTML page instead of {dest.name} (a quota, "
                                            "login or virus-scan page?); download it by hand and pass its folder")
                size = int(response.headers.get("Content-Length", 0)) + offset
                with open(partial, "ab" if offset else "wb") as out, \
                        tqdm(total=size or None, initial=offset, unit="B", unit_scale=True, desc=dest.name) as bar:
                    for chunk in _chain(first, chunks):
                        out.write(chunk)
                        bar.update(len(chunk))
            if size and partial.stat().st_size < size:
                continue  # the server closed early: resume
            break
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):
            continue
    else:
        raise InpaintbenchError(f"{url}: the connection dropped {retries + 1} times; run the command again to resume")
    if md5 is not None and md5sum(partial) != md5:
        partial.unlink()
        raise InpaintbenchError(f"{dest.name} from {url} fails its md5 check (expected {md5}); it was deleted")
    os.replace(partial, dest)
    return dest


def _chain(first: bytes, rest):
    """The first chunk (already read to sniff for HTML), then the rest."""
    if first:
        yield first
    yield from rest

"""Pretrained networks that metrics and loss functions need: where they are looked for, checksums, download, import.

Infrastructure shared by the models (VGG losses, LaMa's segmentation encoder) and the metrics (LPIPS trunks,
FID's Inception), so that no stage imports a later one to find a file.

A file is looked for in ``--weights-dir`` when one is given, else in the torch hub cache
(``torch.hub.get_dir()/checkpoints``, where torchvision and torch-fidelity keep them). Files are checked
against the sha256 prefix that their official names carry, and only ever loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ._io import atomic_write
from ._registry import InpaintbenchError, Registry


@dataclass(frozen=True)
class WeightFile:
    """A pretrained file: its official name, source and checksum prefix, and the metrics that use it."""

    name: str
    filename: str
    url: str
    sha256_prefix: str
    used_by: str


WEIGHTS: Registry[WeightFile] = Registry("weights file")
for _w in [
    WeightFile("alexnet", "alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
               "7be5be79", "lpips (AlexNet trunk, torchvision)"),
    WeightFile("vgg16", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
               "397923af", "lpips_vgg (VGG16 trunk, torchvision); pconv's perceptual and style losses"),
    WeightFile("vgg19", "vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
               "dcbb9e9d", "VGG19 perceptual and style losses (EdgeConnect, AOT-GAN; torchvision)"),
    WeightFile("inception", "weights-inception-2015-12-05-6726825d.pth",
               "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
               "weights-inception-2015-12-05-6726825d.pth", "6726825d", "fid, kid (torch-fidelity InceptionV3)"),
    # LaMa's README (advimman/lama, "Training"): wget this file into $TORCH_HOME/ade20k/ade20k-resnet50dilated-
    # ppm_deepsup/. Its name carries no hash and no checksum is published: the empty prefix checks nothing.
    WeightFile("ade20k-resnet50dilated", "encoder_epoch_20.pth",
               "http://sceneparsing.csail.mit.edu/model/pytorch/ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth",
               "", "LaMa's HRF perceptual loss (CSAIL ADE20k ResNet50-dilated encoder; no published checksum)"),
]:
    WEIGHTS.register(_w.name, _w)


class WeightsUnavailable(InpaintbenchError):
    """A metric's network file is missing or fails its checksum; the message says which and where."""


def search_dir(weights_dir: str | Path | None = None) -> Path:
    """The folder where weight files are looked for."""
    return Path(weights_dir) if weights_dir else Path(torch.hub.get_dir()) / "checkpoints"


def sha256(path: str | Path) -> str:
    """sha256 of a file (hex), read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shown(path: Path) -> str:
    """A path for messages and reports, with the home folder written as ~ (reports are shared)."""
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if home not in ("", "/") and text.startswith(home) else text


def locate(name: str, weights_dir: str | Path | None = None, verify: bool = True) -> Path:
    """The path of weight file ``name``, or WeightsUnavailable with the reason.

    Args:
        name: a WEIGHTS entry.
        weights_dir: folder to look in (default: the torch hub cache).
        verify: refuse a file whose sha256 does not start with the official prefix. Only tests that plug
            randomly initialised networks into the real code pass False.

    """
    entry = WEIGHTS.get(name)
    path = search_dir(weights_dir) / entry.filename
    if not path.is_file():
        raise WeightsUnavailable(f"{entry.filename} not found in {_shown(path.parent)} (run `inpaintbench weights "
                                 "download` on a connected machine, or `inpaintbench weights import FILE`)")
    if verify and not sha256(path).startswith(entry.sha256_prefix):
        raise WeightsUnavailable(f"{_shown(path)} fails its checksum (sha256 should start with {entry.sha256_prefix})")
    return path


def load_state_dict(name: str, weights_dir: str | Path | None = None, verify: bool = True) -> dict:
    """Load weight file ``name`` as a state dict, never unpickling arbitrary objects."""
    return torch.load(locate(name, weights_dir, verify), map_location="cpu", weights_only=True)


def weights_status(weights_dir: str | Path | None = None) -> list[dict[str, str]]:
    """One row per weight file: where it is looked for, whether it is there and whether its checksum matches."""
    rows = []
    for name in WEIGHTS:
        entry = WEIGHTS.get(name)
        path = search_dir(weights_dir) / entry.filename
        if not path.is_file():
            state = "missing"
        else:
            if not entry.sha256_prefix:
                state = "present (no published checksum)"
            else:
                state = "ok" if sha256(path).startswith(entry.sha256_prefix) else "checksum mismatch"
        rows.append({"name": name, "file": entry.filename, "used by": entry.used_by, "path": str(path),
                     "status": state})
    return rows


def download_weights(names: list[str] | None = None, weights_dir: str | Path | None = None) -> list[Path]:
    """Download weight files (all by default) into the search folder, verifying their sha256 prefix.

    ``torch.hub.download_url_to_file`` writes to a temporary file and moves it into place only after the
    hash check, so a failed or interrupted download leaves nothing under the final name.
    """
    entries = [WEIGHTS.get(name) for name in names or list(WEIGHTS)]  # an unknown name fails before any mkdir
    folder = search_dir(weights_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in entries:
        path = folder / entry.filename
        if not (path.is_file() and sha256(path).startswith(entry.sha256_prefix)):
            try:
                torch.hub.download_url_to_file(entry.url, str(path), hash_prefix=entry.sha256_prefix or None,
                                               progress=True)
            except (OSError, RuntimeError) as err:
                raise InpaintbenchError(f"could not download {entry.filename} from {entry.url}: {err}") from None
        paths.append(path)
    return paths


def import_weights(file: str | Path, weights_dir: str | Path | None = None, name: str | None = None) -> Path:
    """Copy a weight file a user brought into the search folder, after checking its checksum and content.

    The entry is found from ``name`` or from the file's official name.
    """
    file = Path(file)
    if not file.is_file():
        raise InpaintbenchError(f"{file} does not exist")
    if name is None:
        matches = [n for n in WEIGHTS if WEIGHTS.get(n).filename == file.name]
        if not matches:
            known = ", ".join(WEIGHTS.get(n).filename for n in WEIGHTS)
            raise InpaintbenchError(f"{file.name} is not a known weights file ({known}); pass --name")
        name = matches[0]
    entry = WEIGHTS.get(name)
    if not sha256(file).startswith(entry.sha256_prefix):
        raise InpaintbenchError(f"{file} is not {entry.filename}: its sha256 does not start with {entry.sha256_prefix}")
    try:
        torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling refusal: the file holds more than tensors
        raise InpaintbenchError(f"{file} is not a plain state dict: {err}") from None
    folder = search_dir(weights_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_write(folder / entry.filename, lambda tmp: shutil.copyfile(file, tmp), "importing into")

"""The checkpoint store: trained and imported weights as safetensors with a small model card.

An entry is a folder (``models/checkpoints/<name>/`` by default) with

* ``model.safetensors``: the weights of the model's inference modules (a GAN's discriminators and every
  optimiser state are training-only and are not stored; a run that kept an EMA stores the EMA weights);
* ``card.json``: the registered model name and its full config (so the entry rebuilds the same network), where
  the weights come from (``trained`` with the training options and data, or ``imported`` with the layout, the
  original file's name and sha256 and the license line), the parameter count, and the sha256 of
  ``model.safetensors``, checked on every load so that a file changed or truncated after it was stored is an
  error naming it, never silently different numbers.

The Trainer finishes every run by writing an entry into its run folder; :func:`import_checkpoint` converts an
official file into one (strictly, through the layouts of :mod:`.checkpoints`). Suites, ``inpaintbench eval`` and
``inpaintbench inpaint`` read entries with :func:`load_stored`. Files are written under temporary names and
renamed, and the card goes last, so an interrupted write never leaves an entry that looks complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from .._io import atomic_write, os_error_cause
from .._registry import InpaintbenchError
from .._weights import sha256
from .base import MODELS, InpaintModel, count_generator_parameters, create_model, resolve_config
from .checkpoints import OWN_LAYOUT, convert, detect_layouts, layouts_for, read_checkpoint

__all__ = ["CARD_FILE", "DEFAULT_STORE", "WEIGHTS_FILE", "import_checkpoint", "list_checkpoints", "load_stored",
           "read_card", "read_stored_weights", "resolve_entry", "write_entry"]

DEFAULT_STORE = Path("models/checkpoints")
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
CARD_VERSION = 1


def _store(store: str | Path | None) -> Path:
    return Path(store) if store is not None else DEFAULT_STORE


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(path, lambda p: p.write_text(text))


def write_entry(folder: str | Path, model: InpaintModel, model_name: str, card: dict[str, Any]) -> Path:
    """Store ``model``'s inference weights and its card in ``folder``; return the weights file.

    Args:
        folder: the entry's folder (created if missing).
        model: the model whose :meth:`~.base.InpaintModel.inference_state_dict` is stored.
        model_name: its registered name.
        card: what the card says about the weights' origin (``source``, ``train`` or ``layout`` ...); the model
            name, config, parameter count and checksum are added here.

    Returns:
        The path of ``model.safetensors``.

    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    tmp = weights.with_name(weights.name + ".partial")
    # safetensors wants contiguous tensors that share no memory (expanded buffers, tied weights)
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.inference_state_dict().items()}
    try:
        # one metadata entry only: safetensors writes the metadata map in hash order (bytes would vary)
        save_file(tensors, str(tmp), metadata={"model": model_name})
        digest = sha256(tmp)
        os.replace(tmp, weights)
    except (OSError, SafetensorError) as err:  # a full disk reaches us as "I/O error: No space left on device"
        cause = str(err).split("I/O error: ")[-1] if isinstance(err, SafetensorError) else os_error_cause(err)
        raise InpaintbenchError(f"writing {weights} failed: {cause}") from None
    finally:
        tmp.unlink(missing_ok=True)
    full = {**card, "card_version": CARD_VERSION, "model": model_name,
            "config": dataclasses.asdict(model.config), "parameters": count_generator_parameters(model),
            "sha256": digest, "weights": WEIGHTS_FILE, "inpaintbench": __version__}
    _write_json(folder / CARD_FILE, full)
    return weights


def read_card(folder: str | Path) -> dict[str, Any]:
    """The card of a store entry.

    Raises:
        InpaintbenchError: when the folder holds no readable card.

    """
    path = Path(folder) / CARD_FILE
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise InpaintbenchError(f"{folder} is not a checkpoint store entry (no {CARD_FILE})") from None
    except (OSError, json.JSONDecodeError) as err:
        raise InpaintbenchError(f"{path} is not a readable model card: {err}") from None
    if not isinstance(card, dict) or "model" not in card:
        raise InpaintbenchError(f"{path} is not a model card (no model name)")
    return card


def resolve_entry(ref: str | Path, store: str | Path | None = None) -> Path:
    """The folder of a store entry given by name, folder or weights file.

    Raises:
        InpaintbenchError: with the stored names when ``ref`` is none of these.

    """
    path = Path(ref)
    if path.is_file() and path.name == WEIGHTS_FILE:
        return path.parent
    if path.is_dir():
        return path
    if path.is_file():  # an official file, say: a user's likely slip, which "no checkpoint named" would hide
        raise InpaintbenchError(f"{path} is a file, not a checkpoint-store entry (a folder with {WEIGHTS_FILE} and a "
                                "card); an official checkpoint goes in with `inpaintbench weights import-model MODEL "
                                "FILE`, a training run is named by its folder or its checkpoint.pt")
    named = _store(store) / str(ref)
    if named.is_dir():
        return named
    names = [c["name"] for c in list_checkpoints(store)]
    raise InpaintbenchError(f"no checkpoint {str(ref)!r} in {_store(store)} "
                            f"({'stored: ' + ', '.join(names) if names else 'the store is empty'}; "
                            f"`inpaintbench weights list` shows them)")


def read_stored_weights(ref: str | Path, store: str | Path | None = None
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The weights of a store entry, after checking their sha256 against its card, and the card.

    Args:
        ref: an entry's name in the store, its folder, or its ``model.safetensors``.
        store: the store folder (default ``models/checkpoints``).

    Returns:
        ``(state dict, card)``.

    Raises:
        InpaintbenchError: an unknown entry, or a weights file missing, changed or truncated since it was stored.

    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve_entry(ref, store)
    card = read_card(folder)
    weights = folder / card.get("weights", WEIGHTS_FILE)
    if not weights.is_file():
        raise InpaintbenchError(f"{weights} is missing (the entry's card names it)")
    digest = sha256(weights)
    if digest != card.get("sha256"):
        raise InpaintbenchError(f"{weights} changed after it was stored (its sha256 is {digest[:12]}..., the card "
                                f"says {str(card.get('sha256'))[:12]}...): retrain or re-import it")
    try:
        return load_file(str(weights)), card
    except (SafetensorError, OSError) as err:
        raise InpaintbenchError(f"{weights} is not a readable safetensors file: {err}") from None


def load_stored(ref: str | Path, store: str | Path | None = None, model: str | None = None
                ) -> tuple[InpaintModel, dict[str, Any]]:
    """Build the model of a store entry and load its weights, after checking their sha256 against the card.

    Args:
        ref: an entry's name in the store, its folder, or its ``model.safetensors``.
        store: the store folder (default ``models/checkpoints``).
        model: when given, the entry must be of this registered model's family (an error names both otherwise).

    Returns:
        The model in eval mode and its card.

    Raises:
        InpaintbenchError: unknown entry, another model's entry, a weights file changed or truncated since it
            was stored, or keys that do not fit (one line each).

    """
    state, card = read_stored_weights(ref, store)
    name = card["model"]
    if model is not None and name != model and MODELS.get(model).model_cls is not MODELS.get(name).model_cls:
        raise InpaintbenchError(f"checkpoint {ref} is a {name} checkpoint, not {model}")
    net = create_model(name, **card.get("config", {}))
    net.load_inference_state_dict(state, source=str(resolve_entry(ref, store) / WEIGHTS_FILE), model_name=name)
    return net.eval(), card


def list_checkpoints(store: str | Path | None = None) -> list[dict[str, Any]]:
    """The entries of the store, one card each (with ``name`` and ``path``), sorted by name."""
    root = _store(store)
    cards = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if (folder / CARD_FILE).is_file():
            try:
                card = read_card(folder)
            except InpaintbenchError:
                continue
            cards.append({**card, "name": folder.name, "path": str(folder)})
    return cards


def _original_sha256(path: Path) -> str:
    """sha256 of the official file; for a release folder (one file per network), of its files' names and sha256s."""
    if path.is_file():
        return sha256(path)
    from .checkpoints import CHECKPOINT_SUFFIXES

    digest = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES):
        digest.update(f"{f.name}:{sha256(f)}\n".encode())
    return digest.hexdigest()


def import_checkpoint(model: str, file: str | Path, layout: str | None = None, name: str | None = None,
                      license: str | None = None, store: str | Path | None = None) -> Path:
    """Convert an official checkpoint for ``model`` and keep it in the store as safetensors with a card.

    The file is read safely (:func:`~.checkpoints.read_checkpoint`), its layout detected from its keys (or
    forced with ``layout``), converted by the layout's key map and checked strictly: a missing, unexpected or
    mis-shaped key stops the import with every such key named, and nothing is written.

    Args:
        model: the registered model the weights are for (``pconv-256``, ``big-lama``...).
        file: the official file (or an inpaintbench state dict / safetensors file), or a release folder with one
            file per network (EdgeConnect's EdgeModel_gen.pth + InpaintingModel_gen.pth).
        layout: force a layout by name (see ``inpaintbench weights layouts``); None detects it.
        name: the entry's name in the store (default ``<model>-<layout>-<first 8 hex of the file's sha256>``).
        license: the license line of the weights, kept in the card.
        store: the store folder (default ``models/checkpoints``).

    Returns:
        The entry's folder.

    Raises:
        InpaintbenchError: one line: an unreadable or refused file, a file of another model, no known layout,
            keys that do not fit, or a name already used by different weights.

    Example:
        >>> import_checkpoint("pconv-256", "pconv_naoto.pth")  # doctest: +SKIP

    """
    entry = MODELS.get(model)
    file = Path(file)
    obj = read_checkpoint(file)
    # the layout's conventions first: some change shapes (mmagic's DeepFill v2 has gated output layers)
    family = layouts_for(entry.model_cls)
    guess = (next((lay for lay in family if lay.name == layout), None) if layout else
             next((lay for lay in detect_layouts(obj) if lay.model_cls is entry.model_cls), None))
    probe = create_model(model, **(dict(guess.config) if guess else {}))
    state, chosen = convert(entry.model_cls, model, obj, probe.inference_state_dict(), layout=layout,
                            source=str(file))
    overrides = dict(chosen.config) if chosen else {}
    net = create_model(model, **overrides) if overrides else probe
    resolve_config(model, **overrides)  # a layout's overrides are options the model has
    net.load_inference_state_dict(state, source=str(file), model_name=model)
    original = _original_sha256(file)
    layout_name = chosen.name if chosen else OWN_LAYOUT
    folder = _store(store) / (name or f"{model}-{layout_name}-{original[:8]}")
    if folder.exists() and not (folder / CARD_FILE).is_file():
        raise InpaintbenchError(f"{folder} exists and is not a store entry; choose another --name")
    if (folder / CARD_FILE).is_file():
        card = read_card(folder)
        if card.get("original_sha256") == original and card.get("model") == model:
            return folder  # the same file imported again: nothing to do
        raise InpaintbenchError(f"{folder} already holds other weights ({card.get('model')}, from "
                                f"{card.get('original_file')}); choose another --name")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    card = {"source": "imported", "layout": chosen.key if chosen else OWN_LAYOUT, "original_file": file.name,
            "original_sha256": original, "license": license or "",
            "source_url": chosen.source if chosen else "",
            "imported": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    try:
        write_entry(partial, net, model, card)
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder

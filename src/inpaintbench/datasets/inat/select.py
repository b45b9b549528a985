"""Choosing the photos of a class: observation-id order, license, species cap, duplicates; and the splits."""

from __future__ import annotations

import asyncio
import collections
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fetch import Listing, Photos
from .recipe import ClassQuery, Recipe


@dataclass
class Candidate:
    """One observation (and one of its photos) considered for a class, with the decision."""

    label: int
    observation: dict[str, Any]
    photo: dict[str, Any] | None
    reason: str = ""
    outcome: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """``inat-<photo id>``, or ``inat-o<observation id>`` for an observation without a usable photo."""
        return f"inat-{self.photo['id']}" if self.photo else f"inat-o{self.observation['id']}"

    @property
    def species(self) -> str:
        """The species the per-species cap counts (the taxon's name; subspecies count as their species)."""
        taxon = self.observation["taxon"]
        name = taxon.get("name") or "unknown"
        # subspecies and varieties count towards their species
        return " ".join(name.split()[:2]) if taxon.get("rank") in ("subspecies", "variety", "form") else name


def _photos_of(observation: dict[str, Any], licenses: tuple[str, ...], count: int) -> tuple[list[dict], str]:
    """The first ``count`` photos (by position) with an allowed license, or a reason why there are none."""
    photos = observation["photos"]
    allowed = [p for p in photos if p.get("license_code") in licenses]
    if allowed:
        return allowed[:count], ""
    if not photos:
        return [], "observation without photos"
    codes = sorted({p.get("license_code") or "all rights reserved" for p in photos})
    return [], f"no photo with an allowed license ({', '.join(codes)})"


async def select_class(label: int, cls: ClassQuery, target: int, listing: Listing, photos: Photos,
                       recipe: Recipe, seen_photos: set[int], seen_hashes: dict[str, str],
                       ) -> tuple[list[Candidate], list[Candidate]]:
    """Accept photos of one class in observation-id order until ``target``; return (accepted, rejected).

    Downloads run ahead of the decisions in a window (bounded by the client's concurrency), but each
    candidate is decided in order, so the result does not depend on which download finishes first.
    ``seen_photos`` and ``seen_hashes`` carry the photo ids and content hashes of the classes decided
    before, so one picture never appears twice, not even under two classes.
    """
    accepted: list[Candidate] = []
    rejected: list[Candidate] = []
    per_species: collections.Counter[str] = collections.Counter()
    pending_species: collections.Counter[str] = collections.Counter()
    window: collections.deque[tuple[Candidate, asyncio.Task | None]] = collections.deque()
    cap = cls.max_per_species
    ahead = 4 * recipe.politeness.concurrency  # deep enough that one photo in its retries does not stall the rest
    source = listing.__aiter__()
    exhausted = False

    def start(candidate: Candidate) -> asyncio.Task | None:
        if candidate.reason or (cap is not None and per_species[candidate.species]
                                + pending_species[candidate.species] >= cap):
            return None
        pending_species[candidate.species] += 1
        return asyncio.ensure_future(photos.fetch(candidate.photo))

    async def refill() -> None:
        nonlocal exhausted
        while not exhausted and len(window) < ahead and sum(t is not None for _, t in window) < (
                target - len(accepted)) * 1.25 + 4:
            try:
                observation = await source.__anext__()
            except StopAsyncIteration:
                exhausted = True
                return
            chosen, reason = _photos_of(observation, recipe.licenses, recipe.photos_per_observation)
            for photo in chosen or [None]:
                candidate = Candidate(label, observation, photo, reason)
                if photo is not None and int(photo["id"]) in seen_photos:
                    candidate.reason = "duplicate photo id"
                elif photo is not None:
                    seen_photos.add(int(photo["id"]))
                window.append((candidate, start(candidate)))

    try:
        while len(accepted) < target:
            await refill()
            if not window:
                break
            candidate, task = window.popleft()
            if task is not None:
                pending_species[candidate.species] -= 1
            if not candidate.reason and cap is not None and per_species[candidate.species] >= cap:
                candidate.reason = f"species cap of {cap} reached ({candidate.species})"
            if candidate.reason:
                rejected.append(candidate)
                continue
            candidate.outcome = await (task or asyncio.ensure_future(photos.fetch(candidate.photo)))
            sha = candidate.outcome.get("sha256")
            if candidate.outcome["status"] != "ok":
                candidate.reason = candidate.outcome["reason"]
            elif sha in seen_hashes:
                candidate.reason = f"duplicate content of {seen_hashes[sha]}"
            if candidate.reason:
                rejected.append(candidate)
                continue
            seen_hashes[sha] = candidate.key
            per_species[candidate.species] += 1
            accepted.append(candidate)
    finally:
        unneeded = [task for _, task in window if task is not None]  # downloads beyond the target
        for task in unneeded:
            task.cancel()
        await asyncio.gather(*unneeded, return_exceptions=True)
    return accepted, rejected


def _rank(seed: int, observation_id: int) -> str:
    return hashlib.sha256(f"{seed}:{observation_id}".encode()).hexdigest()


def assign_splits(accepted: list[Candidate], rejected: list[Candidate], recipe: Recipe) -> dict[str, list]:
    """Split by observation, stratified per class, deterministic.

    Within a class, observations ranked by a seeded hash fill train, val and test to their fractions (all
    photos of an observation stay together); rejected candidates go where their observation's hash falls.
    """
    names = [name for name, _ in recipe.splits]
    splits: dict[str, list[Candidate]] = {name: [] for name in names}
    by_class: dict[int, list[Candidate]] = collections.defaultdict(list)
    for candidate in accepted:
        by_class[candidate.label].append(candidate)
    for items in by_class.values():
        order = sorted({c.observation["id"] for c in items}, key=lambda o: _rank(recipe.seed, o))
        quotas, cumulative = [], 0.0
        for _, fraction in recipe.splits:
            cumulative += fraction
            quotas.append(round(cumulative * len(items)))
        photos_of = collections.defaultdict(list)
        for c in items:
            photos_of[c.observation["id"]].append(c)
        filled, split_index = 0, 0
        for observation_id in order:
            while split_index < len(names) - 1 and filled >= quotas[split_index]:
                split_index += 1
            splits[names[split_index]] += photos_of[observation_id]
            filled += len(photos_of[observation_id])
    edges = np.cumsum([f for _, f in recipe.splits])
    for candidate in rejected:
        u = int(_rank(recipe.seed, candidate.observation["id"])[:12], 16) / 16**12
        splits[names[min(int(np.searchsorted(edges, u, side="right")), len(names) - 1)]].append(candidate)
    # shards mix the classes: a seeded order of (observation, key) inside each split
    return {name: sorted(items, key=lambda c: (_rank(recipe.seed, c.observation["id"]), c.key))
            for name, items in splits.items()}

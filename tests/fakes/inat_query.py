"""The query side of the fake iNaturalist API: the observation index, filters, ordering and paging.

``ObservationIndex.search(query)`` answers ``GET /v1/observations`` as the real API does (see
tests/fakes/inat_server.py, which serves it): filters combined with AND, the orders of ``order_by``, the
``per_page`` clamp to 200, the 10,000-result window, and 422 for a malformed parameter.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from tests.fakes.inat_world import DEFAULT_PER_PAGE, MAX_PER_PAGE, MAX_RESULT_WINDOW, WINDOW_ERROR


class BadParam(ValueError):
    """A query parameter the real API would refuse (answered with 422)."""


@dataclasses.dataclass
class Row:
    """One observation as the filters see it (``json`` is its served text)."""

    id: int
    created_at: str
    updated_at: str
    observed_on: str
    ancestors: frozenset[int]
    iconic: str
    licenses: frozenset[str | None]
    quality: str
    captive: bool
    obs_license: str | None
    n_photos: int
    json: str = ""


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    return True if v == "true" else False if v == "false" else None


def _multi(query: Any, name: str) -> list[str] | None:
    values = query.getall(name, None)
    if values is None:
        return None
    items = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return items or None


def _ints(query: Any, name: str) -> list[int] | None:
    items = _multi(query, name)
    if items is None:
        return None
    try:
        return [int(s) for s in items]
    except ValueError:
        raise BadParam(f"{name} must be an integer or a comma-separated list of integers") from None


def _one_int(query: Any, name: str, default: int | None) -> int | None:
    value = query.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        return default


def json_response(payload: dict, status: int, headers: dict | None = None) -> tuple[int, bytes, dict]:
    """A JSON answer as (status, body, headers)."""
    return status, json.dumps(payload).encode(), {"Content-Type": "application/json; charset=utf-8", **(headers or {})}


class ObservationIndex:
    """The served observations in each order the API offers (rows sorted by id; ``json`` filled when served)."""

    def __init__(self, rows: list[Row], seed: int) -> None:
        self.rows = sorted(rows, key=lambda r: r.id)
        self.orders = {
            "id": self.rows,
            "created_at": sorted(self.rows, key=lambda r: (r.created_at, r.id)),
            "updated_at": sorted(self.rows, key=lambda r: (r.updated_at, r.id)),
            "observed_on": sorted(self.rows, key=lambda r: (r.observed_on, r.id)),
        }
        self.random_order = random.Random(f"order-{seed}")

    def search(self, q: Any) -> tuple[int, bytes, dict]:
        """The answer to ``GET /v1/observations`` with query ``q``, as (status, body, headers)."""
        per_page = _one_int(q, "per_page", DEFAULT_PER_PAGE)
        per_page = min(max(per_page, 0), MAX_PER_PAGE)
        page = max(_one_int(q, "page", 1), 1)
        if page * per_page > MAX_RESULT_WINDOW:
            return json_response({"error": WINDOW_ERROR, "status": 403}, 403)
        try:
            rows = self.filter(q)
        except BadParam as exc:
            return json_response({"error": str(exc), "status": 422}, 422)
        total = len(rows)
        if per_page == 0:
            results = ""
        else:
            window = rows[(page - 1) * per_page : page * per_page]
            if _bool(q.get("only_id")):
                results = ",".join(f'{{"id": {r.id}}}' for r in window)
            else:
                results = ",".join(r.json for r in window)
        body = f'{{"total_results": {total}, "page": {page}, "per_page": {per_page}, "results": [{results}]}}'
        return 200, body.encode(), {"Content-Type": "application/json; charset=utf-8"}

    def filter(self, q: Any) -> list[Row]:
        """The rows matching ``q``, in the order it asks for."""
        preds = []
        taxa = _ints(q, "taxon_id")
        if taxa:
            wanted = frozenset(taxa)
            preds.append(lambda r: not r.ancestors.isdisjoint(wanted))
        without = _ints(q, "without_taxon_id")
        if without:
            unwanted = frozenset(without)
            preds.append(lambda r: r.ancestors.isdisjoint(unwanted))
        iconic = _multi(q, "iconic_taxa")
        if iconic:
            names = {s.lower() for s in iconic}
            preds.append(lambda r: r.iconic in names)
        grades = _multi(q, "quality_grade")
        if grades:
            gset = {g.lower() for g in grades}
            if "any" not in gset:
                preds.append(lambda r: r.quality in gset)
        verifiable = _bool(q.get("verifiable"))
        if verifiable is not None:
            preds.append(lambda r: (r.quality in ("needs_id", "research")) == verifiable)
        captive = _bool(q.get("captive"))
        if captive is not None:
            preds.append(lambda r: r.captive == captive)
        has_photos = _bool(q.get("photos"))
        if has_photos is not None:
            preds.append(lambda r: (r.n_photos > 0) == has_photos)
        plicense = _multi(q, "photo_license")
        if plicense:
            lset = {s.lower() for s in plicense}
            preds.append(lambda r: not r.licenses.isdisjoint(lset))
        plicensed = _bool(q.get("photo_licensed"))
        if plicensed is not None:
            preds.append(lambda r: any(r.licenses - {None}) == plicensed)
        olicense = _multi(q, "license")
        if olicense:
            oset = {s.lower() for s in olicense}
            preds.append(lambda r: (r.obs_license or "").lower() in oset)
        for name, cmp in (("id_above", int.__gt__), ("id_below", int.__lt__)):
            bound = q.get(name)
            if bound is not None and bound.strip():
                try:
                    b = int(bound)
                except ValueError:
                    raise BadParam(f"{name} must be an integer") from None
                preds.append(lambda r, b=b, cmp=cmp: cmp(r.id, b))
        ids = _ints(q, "id")
        if ids:
            idset = frozenset(ids)
            preds.append(lambda r: r.id in idset)

        order_by = (q.get("order_by") or "created_at").lower()
        if order_by == "random":
            rows = list(self.rows)
            self.random_order.shuffle(rows)
        else:
            rows = self.orders.get(order_by, self.orders["created_at"])
            if (q.get("order") or "desc").lower() != "asc":
                rows = rows[::-1]
        return [r for r in rows if all(p(r) for p in preds)]

"""The inventory of a member's rows, built from the tortoise models themselves.

Every model that points at a member (a foreign key to `Member`, a `member_id` column, or a
foreign key to a model that does) is a holding, so a table added later is erased and counted
without anyone remembering to list it here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from typing import Any

from tortoise import Tortoise
from tortoise.expressions import Q
from tortoise.fields import UUIDField
from tortoise.fields.base import CASCADE
from tortoise.fields.relational import ForeignKeyFieldInstance, OneToOneFieldInstance
from tortoise.models import Model

from coop.db import APP_LABEL
from coop.members.models import Member

MAX_DEPTH = 4
BATCH = 1000

# Rows that carry authority (sessions, tokens, grants, codes, links): deleted in the same
# transaction that destroys the key, so they are dead on the very next request.
AUTHORITY_MARKERS = ("session", "token", "grant", "code", "link")


@dataclass(frozen=True)
class Holding:
    """One table holding member rows, and the filter paths that reach the member id."""

    model: type[Model]
    paths: tuple[str, ...]

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def carries_authority(self) -> bool:
        fields = self.model._meta.fields_map
        return any(m in self.table for m in AUTHORITY_MARKERS) or any(
            name.endswith("token_hash") for name in fields
        )

    def query(self, member_id: uuid.UUID) -> Q:
        filters: dict[str, Any] = {}
        return reduce(lambda a, b: a | b, (Q(**{**filters, p: member_id}) for p in self.paths))

    async def count(self, member_id: uuid.UUID) -> int:
        return await self.model.filter(self.query(member_id)).count()

    async def purge(self, member_id: uuid.UUID, *, batch: int = BATCH) -> int:
        """Delete every row in batches (each its own statement), so the work is linear."""
        pk = self.model._meta.pk_attr
        total = 0
        while True:
            ids = (
                await self.model.filter(self.query(member_id))
                .limit(batch)
                .values_list(pk, flat=True)
            )
            if not ids:
                return total
            total += await self.model.filter(**{f"{pk}__in": list(ids)}).delete()


def all_models() -> list[type[Model]]:
    return list(Tortoise.apps[APP_LABEL].values())


def _direct_paths(model: type[Model]) -> list[str]:
    if model is Member:
        return ["id"]
    paths = []
    meta = model._meta
    for name, target in _fk_targets(model):
        if target is Member:
            paths.append(meta.fields_map[name].source_field or f"{name}_id")
    fk_sources = {meta.fields_map[n].source_field for n in meta.fk_fields | meta.o2o_fields}
    for name, field in meta.fields_map.items():
        if isinstance(field, UUIDField) and name.endswith("member_id") and name not in fk_sources:
            paths.append(name)
    return paths


def _fk_targets(
    model: type[Model], *, cascading_only: bool = False
) -> Iterable[tuple[str, type[Model]]]:
    meta = model._meta
    for name in meta.fk_fields | meta.o2o_fields:
        field = meta.fields_map[name]
        if not isinstance(field, ForeignKeyFieldInstance | OneToOneFieldInstance):
            continue
        if cascading_only and field.on_delete != CASCADE:
            continue
        yield name, field.related_model


def holdings() -> list[Holding]:
    """Every member-holding table, ordered so that children come before their parents."""
    models = all_models()
    paths: dict[type[Model], list[str]] = {m: _direct_paths(m) for m in models}
    # A row whose own foreign key names its member is theirs through that key alone: other
    # paths (e.g. another member's grant to an app this member registered) would reach rows
    # that belong to someone else. Rows without one belong to whoever owns the parent they
    # cascade from (a sync run is its connection's).
    direct = {m for m in models if paths[m]}
    for _ in range(MAX_DEPTH):
        changed = False
        for model in models:
            if model in direct:
                continue
            for name, target in _fk_targets(model, cascading_only=True):
                if target is Member or not paths.get(target):
                    continue
                for sub in paths[target]:
                    path = f"{name}__{sub}"
                    if path.count("__") < MAX_DEPTH and path not in paths[model]:
                        paths[model].append(path)
                        changed = True
        if not changed:
            break
    held = [m for m in models if paths[m]]
    return [Holding(model=m, paths=tuple(paths[m])) for m in _children_first(held)]


def _children_first(models: list[type[Model]]) -> list[type[Model]]:
    """Topological order: a model comes before every model it has a foreign key to."""
    ordered: list[type[Model]] = []
    seen: set[type[Model]] = set()

    def visit(model: type[Model], stack: frozenset[type[Model]]) -> None:
        if model in seen or model in stack:
            return
        for other in models:
            if other is not model and any(t is model for _, t in _fk_targets(other)):
                visit(other, stack | {model})
        seen.add(model)
        ordered.append(model)

    for model in sorted(models, key=lambda m: m._meta.db_table):
        visit(model, frozenset())
    return ordered


async def count_rows(member_id: uuid.UUID) -> dict[str, int]:
    """Rows per table that belong to the member (tables with none are left out)."""
    counts = {}
    for holding in holdings():
        n = await holding.count(member_id)
        if n:
            counts[holding.table] = n
    return counts

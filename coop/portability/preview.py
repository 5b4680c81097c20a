"""What an erasure will do, shown on the confirmation page before the member confirms."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from coop.apps import service as apps
from coop.connectors.models import Connection
from coop.connectors.registry import Registry
from coop.consent.models import Grant
from coop.portability import inventory
from coop.portability.receipt import label_counts


@dataclass(frozen=True)
class ErasurePreview:
    deleted: dict[str, int]
    apps_notified: tuple[tuple[str, bool], ...]  # (app name, has a signed webhook)
    upstream: tuple[tuple[str, bool], ...]  # (connector, can revoke upstream)


async def preview_erasure(*, member_id: uuid.UUID, registry: Registry | None) -> ErasurePreview:
    counts = await inventory.count_rows(member_id)
    app_ids = {
        uuid.UUID(str(a))
        for a in await Grant.filter(member_id=member_id).values_list("app_id", flat=True)
    }
    found = await apps.get_apps(ids=list(app_ids))
    connectors = await Connection.filter(member_id=member_id).values_list("connector", flat=True)
    return ErasurePreview(
        deleted=label_counts(counts),
        apps_notified=tuple(
            sorted((a.name, bool(a.webhook_url and a.webhook_salt)) for a in found.values())
        ),
        upstream=tuple(
            sorted(
                (
                    str(c),
                    callable(getattr(registry.find(str(c)) if registry else None, "revoke", None)),
                )
                for c in set(connectors)
            )
        ),
    )

"""A member's current scores as proof bundles (coop.scoring.proofs), for the export."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from coop.scoring import inputs, proofs, versions
from coop.scoring.models import Score
from coop.scoring.service import NEWEST_FIRST, TABLE, list_enabled_scorers
from coop.vault import MemberCipher


async def current_bundles(
    *, cipher: MemberCipher, member_id: uuid.UUID
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(scorer, bundle) for the latest score of each scorer the member has enabled, by name.
    A stale or kept score is included, marked stale: it proves what the version that
    computed it gave. Scores stored before coop kept their inputs have no bundle."""
    stale = await versions.stale_reasons(member_id=member_id)
    for name in sorted(set(await list_enabled_scorers(member_id=member_id))):
        row = await Score.filter(member_id=member_id, scorer=name).order_by(*NEWEST_FIRST).first()
        if row is None or row.inputs_sealed is None:
            continue
        used = inputs.unpack(
            cipher.open(row.inputs_sealed, table=TABLE, column="inputs_sealed", row=row.id)
        )
        explanation = cipher.open_json(
            row.explanation_sealed, table=TABLE, column="explanation_sealed", row=row.id
        )
        yield (
            name,
            proofs.build(
                score_id=str(row.id),
                scorer=row.scorer,
                version=row.scorer_version,
                computed_at=row.computed_at,
                value=row.value,
                explanation=explanation,
                used=used,
                stale_reason=stale.get(name, ""),
            ),
        )

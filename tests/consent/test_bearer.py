"""resolve_bearer, the one decision who a token speaks for (coop.consent.bearer): what its one
statement reads besides the token (the member's current scores), and the states it refuses
that the grant-state tests elsewhere do not reach (terms held, app deleted, hashing)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from coop.apps import service as apps
from coop.apps.models import App
from coop.apps.terms import validate_terms
from coop.consent import grants
from coop.consent import service as consent
from coop.consent.models import OAuthToken
from coop.consent.tokens import ACCESS_PREFIX
from coop.members.models import Member
from coop.scoring.models import Score
from coop.types import utcnow
from tests.consent.conftest import Issued


async def _score(member: Member, scorer: str, value: float, *, ago: int) -> Score:
    return await Score.create(
        id=uuid.uuid4(),
        member_id=member.id,
        scorer=scorer,
        scorer_version="1",
        value=value,
        inputs_digest="d",
        computed_at=utcnow() - timedelta(seconds=ago),
        explanation_sealed=b"sealed",
    )


async def test_principal_carries_the_newest_score_of_each_scorer(
    issued: Issued, member: Member
) -> None:
    await _score(member, "reach", 10, ago=60)
    newest = await _score(member, "reach", 20, ago=5)
    cadence = await _score(member, "cadence", 0.5, ago=30)
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None
    assert {name: s.id for name, s in principal.scores.items()} == {
        "reach": newest.id,
        "cadence": cadence.id,
    }
    assert principal.scores["reach"].value == 20
    assert principal.scores["reach"].computed_at == newest.computed_at


async def test_scores_tied_on_time_resolve_to_the_greatest_id(
    issued: Issued, member: Member
) -> None:
    one, two = await _score(member, "reach", 1, ago=5), await _score(member, "reach", 2, ago=9)
    await Score.filter(id=two.id).update(computed_at=one.computed_at)
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None
    assert principal.scores["reach"].id == max(one.id, two.id, key=str)


async def test_a_member_without_scores_still_resolves(issued: Issued) -> None:
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None and dict(principal.scores) == {}


async def test_changed_terms_hold_the_token_until_the_member_agrees(
    issued: Issued, member: Member
) -> None:
    await apps.change_terms(
        terms=validate_terms(purpose="To train advertising models."),
        client_id=issued.reg.app.client_id,
    )
    assert await consent.resolve_bearer(issued.access_token) is None
    app = await App.get(id=issued.reg.app.id)
    await grants.agree_to_terms(
        member_id=member.id, grant_id=issued.grant.id, version=app.terms_version
    )
    assert await consent.resolve_bearer(issued.access_token) is not None


async def test_a_deleted_app_takes_its_tokens_with_it(issued: Issued) -> None:
    assert await consent.resolve_bearer(issued.access_token) is not None
    await App.filter(id=issued.reg.app.id).delete()
    assert await consent.resolve_bearer(issued.access_token) is None


async def test_tokens_are_found_by_their_hash_only(issued: Issued) -> None:
    """A row holding a token in clear (not its hash) authenticates nothing."""
    clear = ACCESS_PREFIX + uuid.uuid4().hex
    row = await OAuthToken.filter(grant_id=issued.grant.id).first()
    assert row is not None
    await OAuthToken.filter(id=row.id).update(access_hash=clear)
    assert await consent.resolve_bearer(clear) is None
    assert await consent.resolve_bearer(issued.access_token) is None

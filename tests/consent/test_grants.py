"""Grants: history of events, revocation, pause/resume, expiry, pairwise subjects, and their
effect on the very next token check."""

from __future__ import annotations

import pytest

from coop.consent import service as consent
from coop.consent.models import Grant, GrantEvent
from coop.errors import InvalidInputError, InvalidScopeError, NotFoundError
from coop.members.models import Member
from coop.types import clock
from coop.vault import Vault
from tests.consent.conftest import Issued, issue
from tests.oauth.support import make_member, register


async def kinds(grant: Grant) -> list[str]:
    return [e.kind for e in await GrantEvent.filter(grant_id=grant.id).order_by("at")]


async def test_new_grant_records_a_created_event(issued: Issued) -> None:
    assert await kinds(issued.grant) == ["created"]
    assert issued.grant.status == "active"


async def test_revoked_grant_refuses_the_token_on_the_next_request(
    issued: Issued, member: Member
) -> None:
    assert await consent.resolve_bearer(issued.access_token) is not None
    await consent.revoke_grant(member_id=member.id, grant_id=issued.grant.id)
    assert await consent.resolve_bearer(issued.access_token) is None
    grant = await Grant.get(id=issued.grant.id)
    assert grant.status == "revoked" and grant.ended_at is not None
    assert await kinds(grant) == ["created", "revoked"]


async def test_another_members_grant_cannot_be_revoked(issued: Issued, vault: Vault) -> None:
    stranger = await make_member(vault)
    with pytest.raises(NotFoundError):
        await consent.revoke_grant(member_id=stranger.id, grant_id=issued.grant.id)
    assert await consent.resolve_bearer(issued.access_token) is not None


async def test_pause_suspends_every_grant_and_resume_restores_them(
    member: Member, vault: Vault
) -> None:
    one = await issue(member.id, await register(vault, name="One"))
    two = await issue(member.id, await register(vault, name="Two"))
    assert await consent.pause_sharing(member_id=member.id) == 2
    assert await consent.is_sharing_paused(member_id=member.id)
    for item in (one, two):
        assert await consent.resolve_bearer(item.access_token) is None
    assert await consent.resume_sharing(member_id=member.id) == 2
    for item in (one, two):
        assert await consent.resolve_bearer(item.access_token) is not None
        assert await kinds(item.grant) == ["created", "paused", "resumed"]


async def test_grant_given_while_paused_starts_paused(member: Member, vault: Vault) -> None:
    await consent.pause_sharing(member_id=member.id)
    item = await issue(member.id, await register(vault))
    assert await consent.resolve_bearer(item.access_token) is None
    await consent.resume_sharing(member_id=member.id)
    assert await consent.resolve_bearer(item.access_token) is not None


async def test_one_paused_grant_stays_paused_through_a_sharing_pause_and_resume(
    member: Member, vault: Vault
) -> None:
    one = await issue(member.id, await register(vault, name="One"))
    two = await issue(member.id, await register(vault, name="Two"))
    await consent.pause_grant(member_id=member.id, grant_id=one.grant.id)
    await consent.pause_grant(member_id=member.id, grant_id=one.grant.id)  # no second event
    assert await consent.resolve_bearer(one.access_token) is None
    assert await consent.resolve_bearer(two.access_token) is not None
    assert await consent.pause_sharing(member_id=member.id) == 1  # only `two` was active
    assert await consent.resume_sharing(member_id=member.id) == 1
    assert await consent.resolve_bearer(one.access_token) is None  # still paused by itself
    assert await consent.resolve_bearer(two.access_token) is not None
    await consent.resume_grant(member_id=member.id, grant_id=one.grant.id)
    assert await consent.resolve_bearer(one.access_token) is not None
    assert await kinds(one.grant) == ["created", "paused", "resumed"]
    reasons = (
        await GrantEvent.filter(grant_id=one.grant.id)
        .order_by("at")
        .values_list("reason", flat=True)
    )
    assert reasons == [None, "by_you", "by_you"]


async def test_a_grant_resumed_while_sharing_is_paused_waits_for_sharing(
    member: Member, vault: Vault
) -> None:
    item = await issue(member.id, await register(vault))
    await consent.pause_grant(member_id=member.id, grant_id=item.grant.id)
    await consent.pause_sharing(member_id=member.id)
    grant = await consent.resume_grant(member_id=member.id, grant_id=item.grant.id)
    assert grant.status == "paused" and not grant.held
    assert await consent.resolve_bearer(item.access_token) is None
    await consent.resume_sharing(member_id=member.id)
    assert await consent.resolve_bearer(item.access_token) is not None


async def test_pausing_needs_a_live_grant_of_ones_own(
    issued: Issued, member: Member, vault: Vault
) -> None:
    stranger = await make_member(vault)
    with pytest.raises(NotFoundError):
        await consent.pause_grant(member_id=stranger.id, grant_id=issued.grant.id)
    assert await consent.resolve_bearer(issued.access_token) is not None
    await consent.revoke_grant(member_id=member.id, grant_id=issued.grant.id)
    for change in (consent.pause_grant, consent.resume_grant):
        with pytest.raises(InvalidInputError):
            await change(member_id=member.id, grant_id=issued.grant.id)


async def test_a_paused_grant_that_ran_out_ends_expired_on_resume(
    member: Member, vault: Vault
) -> None:
    item = await issue(member.id, await register(vault), lifetime="1d")
    await consent.pause_grant(member_id=member.id, grant_id=item.grant.id)
    clock.advance(86_401)
    try:
        grant = await consent.resume_grant(member_id=member.id, grant_id=item.grant.id)
    finally:
        clock.reset()
    assert grant.status == "expired"
    assert await kinds(grant) == ["created", "paused", "expired"]


async def test_narrowing_a_grant_narrows_its_live_tokens(issued: Issued, member: Member) -> None:
    await consent.narrow_grant(member_id=member.id, grant_id=issued.grant.id, scopes=["profile"])
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None and principal.scopes == frozenset({"profile"})
    assert await kinds(issued.grant) == ["created", "narrowed"]
    with pytest.raises(InvalidScopeError):
        await consent.narrow_grant(member_id=member.id, grant_id=issued.grant.id, scopes=[])


async def test_expired_grant_refuses_tokens_and_records_expired(
    member: Member, vault: Vault
) -> None:
    item = await issue(member.id, await register(vault), lifetime="1d")
    clock.advance(24 * 3600 + 1)
    assert await consent.resolve_bearer(item.access_token) is None
    assert await consent.expire_due_grants(member_id=member.id) == 1
    assert await kinds(item.grant) == ["created", "expired"]
    assert (await Grant.get(id=item.grant.id)).status == "expired"


async def test_until_revoked_grant_has_no_expiry(member: Member, vault: Vault) -> None:
    item = await issue(member.id, await register(vault), lifetime="forever")
    assert item.grant.expires_at is None


async def test_new_consent_replaces_the_apps_previous_grant(member: Member, vault: Vault) -> None:
    reg = await register(vault)
    old = await issue(member.id, reg)
    new = await issue(member.id, reg, scopes=["profile"])
    assert await consent.resolve_bearer(old.access_token) is None
    assert await consent.resolve_bearer(new.access_token) is not None
    assert (await GrantEvent.get(grant_id=old.grant.id, kind="revoked")).reason == "replaced"


async def test_subject_is_pairwise_per_app_and_stable_per_member(
    member: Member, vault: Vault
) -> None:
    reg_a, reg_b = await register(vault, name="A"), await register(vault, name="B")
    a1 = await issue(member.id, reg_a)
    b = await issue(member.id, reg_b)
    a2 = await issue(member.id, reg_a)
    assert a1.grant.subject == a2.grant.subject
    assert a1.grant.subject != b.grant.subject
    for subject in (a1.grant.subject, b.grant.subject):
        assert str(member.id) not in subject and member.id.hex not in subject
        assert len(subject) >= 32
    other = await make_member(vault)
    assert (await issue(other.id, reg_a)).grant.subject != a1.grant.subject


async def test_account_deletion_refuses_the_token_on_the_next_request(
    issued: Issued, member: Member
) -> None:
    await Member.filter(id=member.id).delete()
    assert await consent.resolve_bearer(issued.access_token) is None
    assert await Grant.filter(id=issued.grant.id).count() == 0


async def test_listing_shows_live_grants_with_their_app(issued: Issued, member: Member) -> None:
    listed = await consent.list_grants(member_id=member.id)
    assert [g.id for g in listed] == [issued.grant.id]
    assert listed[0].app.name == issued.reg.app.name  # type: ignore[attr-defined]
    await consent.revoke_grant(member_id=member.id, grant_id=issued.grant.id)
    assert await consent.list_grants(member_id=member.id) == []
    assert len(await consent.list_grants(member_id=member.id, live_only=False)) == 1


async def test_lowering_a_score_narrows_the_grant_and_its_live_tokens(
    member: Member, vault: Vault
) -> None:
    item = await issue(
        member.id, await register(vault), scopes=["profile", "score:reach", "score:reach:history"]
    )
    grant = await consent.lower_score(
        member_id=member.id, grant_id=item.grant.id, scope="score:reach", to="score:reach:band"
    )
    assert grant.scopes == ["profile", "score:reach:band"]  # history went with the exact value
    principal = await consent.resolve_bearer(item.access_token)
    assert principal is not None
    assert principal.scopes == frozenset({"profile", "score:reach:band"})
    assert await kinds(grant) == ["created", "narrowed"]
    for scope, to in (("score:reach:band", "score:reach"), ("score:reach", "score:reach:band")):
        with pytest.raises(InvalidScopeError):  # never back up; no longer granted
            await consent.lower_score(
                member_id=member.id, grant_id=item.grant.id, scope=scope, to=to
            )
    grant = await consent.lower_score(
        member_id=member.id, grant_id=item.grant.id, scope="score:reach:band", to=""
    )
    assert grant.scopes == ["profile"]

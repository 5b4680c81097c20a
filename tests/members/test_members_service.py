"""The members service: accounts, sealed profile fields, the data key, duplicates."""

from __future__ import annotations

import asyncio

import pytest

from coop.config import Settings
from coop.errors import AuthenticationError, ConflictError, IntegrityError, InvalidInputError
from coop.members import service
from coop.members.models import Member
from coop.vault import Vault
from coop.vault.models import MemberKey

PASSWORD = "correct horse battery staple"


async def test_sign_up_creates_the_member_and_its_data_key_together(db: str, vault: Vault) -> None:
    member = await service.create_member(vault=vault, email="Ada@Example.org", password=PASSWORD)
    assert await MemberKey.exists(member_id=member.id)
    profile = await service.get_profile(vault=vault, member=member)
    assert profile.email == "ada@example.org"
    assert profile.handle.startswith("member-")
    stored = await Member.get(id=member.id)
    assert b"ada@example.org" not in bytes(stored.email_sealed)
    assert stored.email_index == vault.blind_index("ada@example.org", purpose="email")


async def test_second_sign_up_with_the_same_email_is_a_conflict(db: str, vault: Vault) -> None:
    await service.create_member(vault=vault, email="twice@example.org", password=PASSWORD)
    with pytest.raises(ConflictError) as caught:
        await service.create_member(
            vault=vault, email=" TWICE@example.org", password="another password"
        )
    assert caught.value.code == "email_taken"
    assert await Member.all().count() == 1


async def test_concurrent_sign_ups_with_one_email_create_one_account(db: str, vault: Vault) -> None:
    results = await asyncio.gather(
        *[
            service.create_member(vault=vault, email="race@example.org", password=PASSWORD)
            for _ in range(4)
        ],
        return_exceptions=True,
    )
    assert sum(isinstance(r, Member) for r in results) == 1
    assert all(isinstance(r, Member | ConflictError) for r in results)
    assert await Member.all().count() == 1
    assert await MemberKey.all().count() == 1


@pytest.mark.parametrize("email", ["", "plain", "a@b", "a b@example.org", "@example.org"])
async def test_invalid_emails_are_refused(db: str, vault: Vault, email: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await service.create_member(vault=vault, email=email, password=PASSWORD)
    assert caught.value.code == "invalid_email"


async def test_authenticate_refuses_wrong_password_and_unknown_email_alike(
    db: str, vault: Vault, settings: Settings
) -> None:
    await service.create_member(vault=vault, email="me@example.org", password=PASSWORD)
    errors = []
    for email, password in [("me@example.org", "wrong password!"), ("no@example.org", PASSWORD)]:
        with pytest.raises(AuthenticationError) as caught:
            await service.authenticate(
                vault=vault,
                settings=settings,
                email=email,
                password=password,
                client_address="127.0.0.1",
            )
        errors.append((caught.value.code, caught.value.message))
    assert errors[0] == errors[1] == ("invalid_credentials", "Email or password is incorrect.")


async def test_handle_is_sealed_and_bound_to_its_member(db: str, vault: Vault) -> None:
    alice = await service.create_member(vault=vault, email="a@example.org", password=PASSWORD)
    bob = await service.create_member(vault=vault, email="b@example.org", password=PASSWORD)
    await service.update_handle(vault=vault, member=alice, handle="Alice")
    stored = await Member.get(id=alice.id)
    assert b"Alice" not in bytes(stored.handle_sealed)
    # A sealed handle copied onto another member's row does not open there.
    await Member.filter(id=bob.id).update(handle_sealed=stored.handle_sealed)
    with pytest.raises(IntegrityError) as caught:
        await service.get_profile(vault=vault, member=await Member.get(id=bob.id))
    assert caught.value.code == "integrity_error"

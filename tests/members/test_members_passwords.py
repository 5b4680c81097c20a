"""Password hashing: argon2id at OWASP parameters, rehash on login, constant-time misses."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

from coop.config import Settings
from coop.errors import AuthenticationError, InvalidInputError
from coop.members import passwords, service
from coop.members.models import Member
from coop.vault import Vault

PASSWORD = "correct horse battery staple"


async def test_hashes_are_argon2id_with_owasp_parameters() -> None:
    stored = await passwords.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await passwords.verify_password(stored, PASSWORD)
    assert not await passwords.verify_password(stored, PASSWORD + "!")


async def test_a_garbled_stored_hash_never_verifies() -> None:
    assert not await passwords.verify_password("not a hash", PASSWORD)


@pytest.mark.parametrize(
    ("password", "code"),
    [("a" * 11, "password_too_short"), ("a" * 1025, "password_too_long")],
)
def test_password_policy_bounds(password: str, code: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        passwords.check_password_policy(password)
    assert caught.value.code == code


def test_password_policy_accepts_12_and_1024_characters() -> None:
    passwords.check_password_policy("a" * 12)
    passwords.check_password_policy("a" * 1024)


async def test_login_upgrades_a_hash_made_with_weaker_parameters(
    db: str, vault: Vault, settings: Settings
) -> None:
    member = await service.create_member(vault=vault, email="old@example.org", password=PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID)
    await Member.filter(id=member.id).update(password_hash=weak.hash(PASSWORD))
    await service.authenticate(
        vault=vault,
        settings=settings,
        email="old@example.org",
        password=PASSWORD,
        client_address="127.0.0.1",
    )
    upgraded = (await Member.get(id=member.id)).password_hash
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_unknown_email_costs_a_full_password_verification(
    db: str, vault: Vault, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing must not reveal whether an email has an account: a miss still runs argon2, on a
    hash of the same parameters (so the same cost) as a member's. Counted, not timed: a
    loaded machine makes any timing say anything."""
    member = await service.create_member(vault=vault, email="known@example.org", password=PASSWORD)
    verified: list[tuple[str, bool]] = []
    real_verify = passwords._verify

    def counting_verify(stored: str, password: str) -> bool:
        matches = real_verify(stored, password)
        verified.append((stored, matches))
        return matches

    monkeypatch.setattr(passwords, "_verify", counting_verify)

    for email in ("known@example.org", "unknown@example.org"):
        with pytest.raises(AuthenticationError):
            await service.authenticate(
                vault=vault,
                settings=settings,
                email=email,
                password="wrong password!",
                client_address=f"10.0.0.{len(email)}",
            )
    stored = (await Member.get(id=member.id)).password_hash
    assert verified == [(stored, False), (passwords.DUMMY_HASH, False)]
    assert extract_parameters(passwords.DUMMY_HASH) == extract_parameters(stored)

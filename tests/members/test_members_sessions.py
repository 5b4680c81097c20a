"""Session storage housekeeping: expired sessions and old throttle counters are removed."""

from __future__ import annotations

import dataclasses

import pytest

from coop.config import Settings
from coop.errors import AuthenticationError, SessionEndedError
from coop.members import service, sessions, throttle
from coop.members.models import LoginThrottle, WebSession
from coop.types import clock
from coop.vault import Vault

PASSWORD = "correct horse battery staple"


async def test_logging_in_purges_ones_own_expired_sessions_and_housekeeping_the_rest(
    db: str, vault: Vault, settings: Settings
) -> None:
    alice = await service.create_member(vault=vault, email="a@example.org", password=PASSWORD)
    bob = await service.create_member(vault=vault, email="b@example.org", password=PASSWORD)
    old_alice, _ = await sessions.start(
        vault=vault, settings=settings, member=alice, user_agent=None
    )
    await sessions.start(vault=vault, settings=settings, member=bob, user_agent=None)
    clock.advance(settings.session_idle_seconds + 1)
    live, _ = await sessions.start(vault=vault, settings=settings, member=bob, user_agent=None)
    # A login costs a look at the member's own sessions only, never the whole table.
    assert sorted(str(s.id) for s in await WebSession.all()) == sorted(
        [str(old_alice.id), str(live.id)]
    )
    assert await sessions.purge_expired(settings=settings) == 1  # the hourly housekeeping
    assert [s.id for s in await WebSession.all()] == [live.id]


async def test_resolve_rejects_unknown_oversized_and_empty_tokens(
    db: str, vault: Vault, settings: Settings
) -> None:
    for token in ("", "x" * 129, "unknown-token"):
        assert await sessions.resolve(vault=vault, settings=settings, token=token) is None


async def test_old_throttle_counters_are_dropped(db: str, vault: Vault, settings: Settings) -> None:
    keys = throttle.throttle_keys(vault=vault, email_index="0" * 64, client_address="10.0.0.1")
    await throttle.record_failure(settings=settings, keys=keys)
    clock.advance(2 * settings.login_window_seconds + 1)
    other = throttle.throttle_keys(vault=vault, email_index="1" * 64, client_address="10.0.0.2")
    await throttle.record_failure(settings=settings, keys=other)
    assert sorted(await LoginThrottle.all().values_list("key", flat=True)) == sorted(other)


async def test_a_new_window_starts_after_the_old_one_ends(
    db: str, vault: Vault, settings: Settings
) -> None:
    keys = throttle.throttle_keys(vault=vault, email_index="2" * 64, client_address="10.0.0.3")
    for _ in range(3):
        await throttle.record_failure(settings=settings, keys=keys)
    clock.advance(settings.login_window_seconds + 1)
    await throttle.record_failure(settings=settings, keys=keys)
    assert await LoginThrottle.all().values_list("failures", flat=True) == [1, 1]


def test_login_rate_limit_is_configurable_from_the_environment() -> None:
    settings = Settings.from_env({"COOP_LOGIN_ATTEMPTS": "5", "COOP_LOGIN_WINDOW_SECONDS": "600"})
    assert settings.login_attempts_per_window == 5
    assert settings.login_window_seconds == 600


async def test_wrong_step_up_passwords_end_the_session_not_the_members_logins(
    db: str, vault: Vault, settings: Settings
) -> None:
    limited = dataclasses.replace(settings, login_attempts_per_window=2)
    member = await service.create_member(vault=vault, email="c@example.org", password=PASSWORD)
    session, _ = await sessions.start(vault=vault, settings=limited, member=member, user_agent=None)
    attempt = {
        "vault": vault,
        "settings": limited,
        "member": member,
        "session_id": session.id,
        "password": "not the password",
        "client_address": "198.51.100.7",
    }
    with pytest.raises(AuthenticationError):
        await service.reauthenticate(**attempt)  # type: ignore[arg-type]
    with pytest.raises(SessionEndedError):
        await service.reauthenticate(**attempt)  # type: ignore[arg-type]
    assert not await WebSession.filter(id=session.id).exists()
    keys = await LoginThrottle.all().values_list("key", flat=True)
    assert not any(str(k).startswith(("email:", "session:")) for k in keys)  # only the address
    again = await service.authenticate(
        vault=vault,
        settings=limited,
        email="c@example.org",
        password=PASSWORD,
        client_address="192.0.2.1",
    )
    assert again.id == member.id

"""Fixtures for the authorization-server tests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from coop.config import Settings
from coop.members.models import Member
from coop.vault import Vault
from tests.oauth.support import log_in, make_member


@pytest.fixture
async def member(db: str, vault: Vault) -> Member:
    return await make_member(vault)


@pytest.fixture
async def member_client(
    client: httpx.AsyncClient, member: Member, vault: Vault, settings: Settings
) -> Any:
    """The in-process client, logged in as `member`."""
    await log_in(client, vault, settings, member)
    return client

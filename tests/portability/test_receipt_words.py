"""Deletion previews and receipts name what they delete in words, with the right plural."""

from __future__ import annotations

import re

import httpx
import pytest

from coop.portability import inventory
from coop.portability.receipt import KINDS, counted, label_counts
from tests.web.journeys import log_in_new_member

pytestmark = pytest.mark.usefixtures("db")


def test_every_table_a_member_has_rows_in_has_words() -> None:
    missing = sorted(h.table for h in inventory.holdings() if h.table not in KINDS)
    assert missing == [], f"add plain words for these tables to receipt.KINDS: {missing}"


@pytest.mark.parametrize(
    ("n", "label", "words"),
    [
        (1, "signed-in sessions", "1 signed-in session"),
        (2, "signed-in sessions", "2 signed-in sessions"),
        (0, "synced records", "0 synced records"),
        (1, "grant history entries", "1 grant history entry"),
        (1, "account", "1 account"),
    ],
)
def test_a_count_reads_as_words(n: int, label: str, words: str) -> None:
    assert counted(n, label) == words


def test_receipt_keys_are_words_even_for_an_unlisted_table() -> None:
    assert label_counts({"web_session": 2, "some_new_table": 1}) == {
        "signed-in sessions": 2,
        "some new table": 1,
    }


async def test_the_delete_confirmation_lists_words_not_tables(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    page = await client.get("/account/delete")
    items = re.findall(r"<li>(\d+ [^<]+)</li>", page.text)
    assert "1 signed-in session" in items and "1 account" in items
    assert not [item for item in items if "_" in item], items

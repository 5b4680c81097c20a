"""Erasure benchmark: for members with 100 and 100,000 records, the time to destroy the key
(the transaction after which nothing of theirs can be decrypted) and the time to purge the
rows. The first must not grow with the member's size (O(1)); the second grows linearly.

Usage: python bench/erase.py [--sizes 100 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _portability_setup import make_member, make_settings, open_db
from tortoise import Tortoise

from coop.config import Settings
from coop.portability import erase, inventory
from coop.vault import Vault


async def measure(vault: Vault, settings: Settings, records: int) -> dict[str, float]:
    member_id = await make_member(vault, records)
    marks: dict[str, float] = {}

    async def mark(step: str) -> None:
        marks[step] = time.perf_counter()

    started = time.perf_counter()
    await erase.erase_member(vault=vault, settings=settings, member_id=member_id, after_step=mark)
    assert await inventory.count_rows(member_id) == {}
    return {
        "records": records,
        "key_ms": (marks["key_destroyed"] - marks["plan"]) * 1000,
        "purge_ms": (marks["purged"] - marks["upstream"]) * 1000,
        "total_ms": (time.perf_counter() - started) * 1000,
    }


async def main(sizes: list[int]) -> None:
    settings = make_settings()
    vault = await open_db(settings)
    try:
        await measure(vault, settings, 10)  # warm up
        results = [await measure(vault, settings, n) for n in sizes]
    finally:
        await Tortoise.close_connections()
    print(f"{'records':>8} {'key destroyed ms':>17} {'purge ms':>10} {'total ms':>10}")
    for r in results:
        print(
            f"{r['records']:>8} {r['key_ms']:>17.1f} {r['purge_ms']:>10.1f} {r['total_ms']:>10.1f}"
        )
    if len(results) >= 2:
        first, last = results[0], results[-1]
        growth = last["records"] / first["records"]
        print(
            f"records x{growth:.0f}: key destruction x{last['key_ms'] / first['key_ms']:.2f} "
            f"(O(1) means close to 1), purge x{last['purge_ms'] / first['purge_ms']:.0f} "
            f"(linear means up to x{growth:.0f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 100_000])
    asyncio.run(main(parser.parse_args().sizes))

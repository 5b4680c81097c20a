"""Export benchmark: records/s of the streamed ZIP export against a baseline of raw AES-GCM
decrypt + JSON encode of the same records (in memory, no database, no ZIP), in the same run,
and the peak traced memory of the export for 10k vs 100k records (it must stay flat).

Usage: python bench/export.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import tracemalloc
import uuid

from _portability_setup import make_member, make_settings, open_db
from tortoise import Tortoise

from coop.connectors import store
from coop.connectors.models import Record
from coop.portability import export
from coop.vault import Vault
from coop.vault.cipher import open_sealed


async def run_export(vault: Vault, member_id: uuid.UUID) -> int:
    size = 0
    async for chunk in await export.stream_export(vault=vault, member_id=member_id):
        size += len(chunk)
    return size


async def baseline(vault: Vault, member_id: uuid.UUID) -> float:
    """Raw AES-GCM open + JSON decode/encode of every record body, blobs already in memory."""
    rows = await Record.filter(member_id=member_id).values_list("id", "body_sealed")
    cipher = await vault.cipher_for(member_id)
    dek = cipher._dek  # the raw key: this is the floor the export is compared with
    aads = [cipher._aad(store.RECORD_TABLE, "body_sealed", row_id) for row_id, _ in rows]
    started = time.perf_counter()
    for (_, blob), aad in zip(rows, aads, strict=True):
        json.dumps(json.loads(open_sealed(dek, bytes(blob), aad))).encode()
    return time.perf_counter() - started


async def measure(vault: Vault, records: int) -> dict[str, float]:
    member_id = await make_member(vault, records)
    base = await baseline(vault, member_id)
    started = time.perf_counter()
    size = await run_export(vault, member_id)
    took = time.perf_counter() - started
    tracemalloc.start()
    await run_export(vault, member_id)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "records": records,
        "export_s": took,
        "export_rps": records / took,
        "baseline_rps": records / base,
        "zip_mb": size / 1e6,
        "peak_mb": peak / 1e6,
    }


async def main(sizes: list[int]) -> None:
    settings = make_settings()
    vault = await open_db(settings)
    try:
        results = [await measure(vault, n) for n in sizes]
    finally:
        await Tortoise.close_connections()
    print(
        f"{'records':>8} {'export rec/s':>13} {'baseline rec/s':>15} {'ratio':>7} "
        f"{'zip MB':>7} {'peak MB':>8}"
    )
    for r in results:
        print(
            f"{r['records']:>8} {r['export_rps']:>13,.0f} {r['baseline_rps']:>15,.0f} "
            f"{r['export_rps'] / r['baseline_rps']:>7.2%} {r['zip_mb']:>7.1f} "
            f"{r['peak_mb']:>8.1f}"
        )
    if len(results) >= 2:
        first, last = results[0], results[-1]
        print(
            f"records x{last['records'] / first['records']:.0f} -> peak memory "
            f"x{last['peak_mb'] / first['peak_mb']:.2f} (flat means close to 1)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    asyncio.run(main(parser.parse_args().sizes))

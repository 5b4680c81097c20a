"""Export benchmark: records/s of the streamed ZIP export against raw AES-GCM decryption +
JSON of the same records (in memory, no database, no ZIP), in the same run, and the peak
traced memory of the export for 10k vs 100k records (it must stay flat).

Baselines, each with the blobs, ids and timestamps already in memory:
- floor (`ratio`): one AESGCM object per member, and the export's own JSON: each record
  decoded, then encoded as records.json holds it (same fields, same encoder settings);
- body (`body ratio`): the earlier floor, the body decoded and re-encoded as it was sealed;
- old (`old ratio`): the same with one AESGCM object per record, as measured until 2026-12-03.
Baselines and export alternate for --rounds rounds and the best round of each counts (the
machine is shared): wall time, and process CPU time as a second view that load disturbs less.

Usage: python bench/export.py [--sizes 10000 100000] [--rounds 3] [--engine sqlite|postgres]
(postgres: a scratch database on COOP_BENCH_POSTGRES_URL's server, dropped afterwards)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from _portability_setup import make_member, make_settings, open_db
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tortoise import Tortoise

from coop.connectors import store
from coop.connectors.models import Record
from coop.portability import export
from coop.vault import Vault
from coop.vault.cipher import open_sealed

ADMIN = os.environ.get("COOP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def run_export(vault: Vault, member_id: uuid.UUID) -> int:
    size = 0
    async for chunk in await export.stream_export(vault=vault, member_id=member_id):
        size += len(chunk)
    return size


def timed(work: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


async def atimed(work: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


async def baselines(vault: Vault, member_id: uuid.UUID) -> dict[str, Callable[[], None]]:
    """Raw AES-GCM open + JSON decode/encode of every record, everything else in memory."""
    rows = await Record.filter(member_id=member_id).values_list(
        "id", "connection_id", "kind", "occurred_at", "updated_at", "body_sealed"
    )
    cipher = await vault.cipher_for(member_id)
    dek = cipher._dek  # the raw key: this is the floor the export is compared with
    aead = AESGCM(dek)
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    records = [
        (
            bytes(blob),
            cipher._aad(store.RECORD_TABLE, "body_sealed", row_id),
            (str(row_id), str(connection_id), kind, occurred.isoformat(), updated.isoformat()),
        )
        for row_id, connection_id, kind, occurred, updated, blob in rows
    ]

    def floor() -> None:
        for blob, aad, (row_id, connection_id, kind, occurred, updated) in records:
            body = json.loads(aead.decrypt(blob[1:13], blob[13:], aad))
            encode(
                {
                    "id": row_id,
                    "connection_id": connection_id,
                    "kind": kind,
                    "occurred_at": occurred,
                    "updated_at": updated,
                    "counts": body.get("counts") or {},
                    "text": body.get("text"),
                    "title": body.get("title"),
                    "url": body.get("url"),
                    "network": body.get("network"),
                }
            ).encode()

    def body() -> None:
        for blob, aad, _ in records:
            json.dumps(json.loads(aead.decrypt(blob[1:13], blob[13:], aad))).encode()

    def old() -> None:
        for blob, aad, _ in records:
            json.dumps(json.loads(open_sealed(dek, blob, aad))).encode()

    return {"floor": floor, "body": body, "old": old}


async def measure(vault: Vault, records: int, rounds: int) -> dict[str, float]:
    member_id = await make_member(vault, records)
    floors = await baselines(vault, member_id)
    size = await run_export(vault, member_id)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in [*floors, "export"]}
    for _ in range(rounds):
        for name, floor in floors.items():
            times[name].append(timed(floor))
        times["export"].append(await atimed(lambda: run_export(vault, member_id)))
    tracemalloc.start()
    await run_export(vault, member_id)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    wall = {name: min(w for w, _ in runs) for name, runs in times.items()}
    cpu = {name: min(c for _, c in runs) for name, runs in times.items()}
    return {
        "records": records,
        "export_rps": records / wall["export"],
        "floor_rps": records / wall["floor"],
        "ratio": wall["floor"] / wall["export"],
        "cpu_ratio": cpu["floor"] / cpu["export"],
        "body_ratio": wall["body"] / wall["export"],
        "old_ratio": wall["old"] / wall["export"],
        "zip_mb": size / 1e6,
        "peak_mb": peak / 1e6,
    }


async def scratch_postgres() -> tuple[str, str]:
    name = f"coop_export_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, "postgres://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"


async def drop_postgres(name: str) -> None:
    admin = await asyncpg.connect(ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def main(sizes: list[int], rounds: int, engine: str) -> None:
    name, url = await scratch_postgres() if engine == "postgres" else (None, None)
    try:
        vault = await open_db(make_settings(url))
        try:
            results = [await measure(vault, n, rounds) for n in sizes]
        finally:
            await Tortoise.close_connections()
    finally:
        if name:
            await drop_postgres(name)
    print(f"engine {engine}, best of {rounds} alternating rounds")
    print(
        f"{'records':>8} {'export rec/s':>13} {'floor rec/s':>12} {'ratio':>6} {'cpu ratio':>9} "
        f"{'body ratio':>10} {'old ratio':>9} {'zip MB':>7} {'peak MB':>8}"
    )
    for r in results:
        print(
            f"{r['records']:>8} {r['export_rps']:>13,.0f} {r['floor_rps']:>12,.0f} "
            f"{r['ratio']:>6.1%} {r['cpu_ratio']:>9.1%} {r['body_ratio']:>10.1%} "
            f"{r['old_ratio']:>9.1%} {r['zip_mb']:>7.2f} {r['peak_mb']:>8.1f}"
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.rounds, args.engine))

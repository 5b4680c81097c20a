"""Steps of the backup/restore scenario, each run in its own process (so tortoise's global
state never mixes with the test session's): `python -m tests.portability.scenario STEP`.

Settings come from the COOP_* environment. `seed` prints the people it made as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

from tortoise import Tortoise

from coop.app import build_runtime
from coop.config import Settings
from coop.db import ensure_data_dir, tortoise_config
from coop.errors import KeyMissingError
from coop.portability import erase, inventory
from tests.portability.factories import make_app, make_person


async def seed(settings: Settings) -> dict[str, Any]:
    await Tortoise.generate_schemas(safe=True)
    runtime = build_runtime(settings)
    app_id, _ = await make_app(runtime.vault, "Alpha")
    people = [await make_person(runtime.vault, settings, app_ids=[app_id]) for _ in range(2)]
    return {"people": [{"id": str(p.member_id), "canary": p.canary} for p in people]}


async def erase_one(settings: Settings, member_id: str) -> dict[str, Any]:
    runtime = build_runtime(settings)
    result = await erase.erase_member(
        vault=runtime.vault, settings=settings, member_id=uuid.UUID(member_id)
    )
    return {"ledger_id": str(result.receipt.ledger_id)}


async def inspect(settings: Settings, member_ids: list[str]) -> dict[str, Any]:
    runtime = build_runtime(settings)
    out: dict[str, Any] = {}
    for member_id in member_ids:
        mid = uuid.UUID(member_id)
        try:
            await runtime.vault.cipher_for(mid)
            key = True
        except KeyMissingError:
            key = False
        out[member_id] = {"rows": await inventory.count_rows(mid), "key": key}
    return out


async def main(step: str, args: list[str]) -> None:
    settings = Settings.from_env()
    ensure_data_dir(settings)
    await Tortoise.init(config=tortoise_config(settings))
    try:
        if step == "seed":
            result = await seed(settings)
        elif step == "erase":
            result = await erase_one(settings, args[0])
        else:
            result = await inspect(settings, args)
    finally:
        await Tortoise.close_connections()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))

"""A scoring process configured from its environment like a coop server (COOP_DATABASE_URL,
COOP_DATA_DIR, COOP_MASTER_KEY, COOP_PLUGIN_PATH): one member with posts enables the hostile
`importer` scorer; prints what was stored as the score's explanation (JSON).

test_escape.py runs it as its own process so the database can be PostgreSQL over its Unix
socket, the way docs/operations.md suggests deploying it, while the plugin attacks that
same socket: `python -m tests.scoring.escape_server`."""

from __future__ import annotations

import asyncio
import json

from tortoise import Tortoise

from coop.config import Settings
from coop.db import tortoise_config
from coop.jobs.scoring import ScoringFlow
from coop.scoring import service
from coop.scoring.sandbox import Sandbox, SandboxConfig
from coop.testing import NOW
from coop.vault import Vault, load_keyring, load_secret_key
from tests.scoring.factories import add_records, make_member, posts


async def main() -> None:
    settings = Settings.from_env()
    await Tortoise.init(config=tortoise_config(settings))
    await Tortoise.generate_schemas()
    vault = Vault(load_keyring(settings), load_secret_key(settings))
    flow = ScoringFlow(vault=vault, runner=Sandbox(SandboxConfig.from_settings(settings)))
    try:
        member = await make_member(vault)
        await add_records(vault, member, posts(NOW, 3))
        outcomes = await flow.enable(member_id=member, scorer="importer")
        scores = await service.list_current_scores(vault=vault, member_id=member)
    finally:
        await flow.close()
        await Tortoise.close_connections()
    explanation = scores[0].explanation if scores else None
    print(
        json.dumps(
            {
                "status": [o.status for o in outcomes],
                "reasons": list(explanation.reasons) if explanation else [],
                "contributions": [c.reason for c in explanation.contributions]
                if explanation
                else [],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())

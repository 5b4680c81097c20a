"""What the server does for portability at start and while it runs.

At start, before serving: finish interrupted erasures and re-apply ledger-file entries the
database lacks (a database restored by hand). While running: retry pending webhook notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tortoise.exceptions import OperationalError

from coop.config import Settings
from coop.portability import erase, notices, webhooks
from coop.portability.models import DeletionLedger
from coop.vault import Vault

log = logging.getLogger("coop.portability")


async def converge(*, vault: Vault, settings: Settings) -> int:
    try:
        await DeletionLedger.exists()
    except OperationalError:
        # A schema without the ledger (migrations not applied yet) cannot hold erasures to
        # finish; say so loudly rather than refuse to start.
        log.error("deletion ledger table missing: run `coop migrate`", extra={"code": "no_ledger"})
        return 0
    return await erase.resume_pending(vault=vault, settings=settings)


class WebhookWorker:
    """A background task sending pending deauthorization and score-change notices (with
    retries) until stopped."""

    def __init__(self, settings: Settings, vault: Vault, *, interval: float = 15.0) -> None:
        self.settings = settings
        self.vault = vault
        self.interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            webhooks.run_worker(
                self.settings,
                self.vault,
                self._stop,
                interval=self.interval,
                jobs=(webhooks.deliver_due, notices.deliver_due_notices),
            )
        )

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=15)
            self._task = None

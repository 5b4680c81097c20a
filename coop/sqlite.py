"""coop's SQLite engine for tortoise: tortoise's client, with transactions kept sound for
tasks that share one (every statement and savepoint taken at coop.db's TransactionGate).

A module of its own, named for SQLite, because tortoise's migration executor chooses the
schema editor by the client class's module name: a client defined in coop.db would get the
generic editor, and `coop migrate` would fail (NotImplementedError, for table comments)."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)

from coop.db import GatedTransaction


class _GatedTransaction(GatedTransaction, SqliteTransactionWrapper):
    """tortoise's SQLite transaction client, every statement, BEGIN, COMMIT and ROLLBACK
    taken at the transaction's gate, shared with its nested blocks (tortoise gives each
    nested client a lock of its own, and runs savepoints under none)."""


class _TransactionContext(SqliteTransactionContext):
    """tortoise's SQLite transaction context; its gate ends with it."""

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            await super().__aexit__(exc_type, exc_val, exc_tb)
        finally:
            # No await since tortoise let go of the connection: no other task ran between.
            self.connection._gate.ended = True


class CoopSqliteClient(SqliteClient):
    """tortoise's SQLite client whose transactions are `_GatedTransaction`s."""

    def _in_transaction(self) -> TransactionContext:
        return _TransactionContext(_GatedTransaction(self), self._lock)


# tortoise loads an engine module and uses its `client_class`.
client_class = CoopSqliteClient

__all__ = ["CoopSqliteClient"]

"""The vault service: create, open, rotate and shred member data keys; seal and open data."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

from coop.errors import ConfigError, IntegrityError, KeyMissingError
from coop.types import utcnow
from coop.vault import cipher
from coop.vault.jose import EcKey
from coop.vault.keyring import Keyring
from coop.vault.models import MemberKey, ReceiptKey
from coop.vault.signing import SigningKey, b64url, derive_signing_key

log = logging.getLogger("coop.vault")

WEBHOOK_SECRET_PREFIX = "coop_whsec_"  # noqa: S105 (a public prefix, not a secret)


def _aad(*parts: str) -> bytes:
    # Length-prefix each part so no two different tuples encode to the same bytes.
    joined = bytearray()
    for part in parts:
        encoded = part.encode()
        joined += len(encoded).to_bytes(2, "big")
        joined += encoded
    return bytes(joined)


def _dek_aad(member_id: uuid.UUID, kek_id: str) -> bytes:
    return _aad("coop-dek-v1", str(member_id), kek_id)


class MemberCipher:
    """Seals and opens one member's data. AAD binds each blob to (member, table, column, row)."""

    __slots__ = ("_dek", "_opener", "member_id")

    def __init__(self, member_id: uuid.UUID, dek: bytes) -> None:
        self.member_id = member_id
        self._dek = dek
        self._opener: cipher.Opener | None = None

    def _aad(self, table: str, column: str, row: object) -> bytes:
        return _aad("coop-data-v1", str(self.member_id), table, column, str(row))

    def _open_with(self, aad: bytes, blob: bytes, table: str, column: str) -> bytes:
        if self._opener is None:
            self._opener = cipher.Opener(self._dek)
        try:
            return self._opener.open(bytes(blob), aad)
        except IntegrityError:
            self._integrity_event(table, column)
            raise

    def _integrity_event(self, table: str, column: str) -> None:
        # Tampering, or a blob moved to another place: logged with ids only.
        log.error(
            "integrity: sealed value failed to open",
            extra={"member_id": str(self.member_id), "table": table, "column": column},
        )

    def seal(self, plaintext: bytes | str, *, table: str, column: str, row: object) -> bytes:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        return cipher.seal(self._dek, data, self._aad(table, column, row))

    def open(self, blob: bytes, *, table: str, column: str, row: object) -> bytes:
        return self._open_with(self._aad(table, column, row), blob, table, column)

    def column_opener(self, *, table: str, column: str) -> Callable[[bytes, str], bytes]:
        """`open` for many rows of one column (`opener(blob, row_id)`): the associated data's
        prefix is built once, so a long read (the export's records) pays only for its row."""
        prefix = self._aad(table, column, "")[:-2]  # without the empty row's length prefix
        if self._opener is None:
            self._opener = cipher.Opener(self._dek)
        open_blob = self._opener.open

        def open_row(blob: bytes, row: str) -> bytes:
            part = row.encode()
            try:
                return open_blob(bytes(blob), prefix + len(part).to_bytes(2, "big") + part)
            except IntegrityError:
                self._integrity_event(table, column)
                raise

        return open_row

    def open_text(self, blob: bytes, *, table: str, column: str, row: object) -> str:
        return self.open(blob, table=table, column=column, row=row).decode()

    def seal_json(self, value: Any, *, table: str, column: str, row: object) -> bytes:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
        return self.seal(text, table=table, column=column, row=row)

    def open_json(self, blob: bytes, *, table: str, column: str, row: object) -> Any:
        return json.loads(self.open(blob, table=table, column=column, row=row))

    def __repr__(self) -> str:  # never show key material
        return f"MemberCipher(member_id={self.member_id})"


@dataclass(frozen=True)
class RotationReport:
    rewrapped: int
    remaining: int
    active_kek: str
    retired: tuple[str, ...]
    resumed: bool = False


class Vault:
    """Holds the keyring and server secret; everything else is in the database."""

    def __init__(self, keyring: Keyring, secret: bytes) -> None:
        self.keyring = keyring
        self._index_key = cipher.derive_key(secret, "coop blind index v1")
        self._csrf_key = cipher.derive_key(secret, "coop csrf v1")
        self._webhook_key = cipher.derive_key(secret, "coop webhook v1")
        self._receipt_root = cipher.derive_key(secret, "coop receipt root v1")
        self._client_root = cipher.derive_key(secret, "coop atproto client root v1")
        self._client_key: EcKey | None = None
        self._kek_openers: dict[str, tuple[bytes, cipher.Opener]] = {}

    # -- member keys ---------------------------------------------------------------------
    async def create_key(self, member_id: uuid.UUID) -> MemberCipher:
        """Create and store a new data key for a member (inside the caller's transaction)."""
        dek = cipher.new_key()
        self.keyring.refresh()  # a rotation in another process may have changed the active KEK
        kek_id = self.keyring.active_id
        wrapped = cipher.seal(self.keyring.active, dek, _dek_aad(member_id, kek_id))
        await MemberKey.create(
            member_id=member_id, kek_id=kek_id, wrapped=wrapped, created_at=utcnow()
        )
        return MemberCipher(member_id, dek)

    async def cipher_for(self, member_id: uuid.UUID) -> MemberCipher:
        """Unwrap a member's data key. Raises KeyMissingError once the key is shredded."""
        row = await MemberKey.get_or_none(member_id=member_id)
        if row is None:
            raise KeyMissingError()
        return MemberCipher(member_id, self._unwrap(row))

    def open_key(
        self, member_id: uuid.UUID, kek_id: str | None, wrapped: bytes | None
    ) -> MemberCipher:
        """Unwrap a member's data key from the columns of their `vault_member_key` row, read
        by the caller in the same statement as the data it opens (the API's hot reads, raw
        SQL through coop.db.read_rows). None columns (no row: the key is shredded) raise
        KeyMissingError, as `cipher_for` does. Nothing is cached: the next read of an erased
        member finds no row."""
        if kek_id is None or wrapped is None:
            raise KeyMissingError()
        return MemberCipher(member_id, self._open_wrapped(member_id, str(kek_id), bytes(wrapped)))

    def _unwrap(self, row: MemberKey) -> bytes:
        return self._open_wrapped(row.member_id, row.kek_id, bytes(row.wrapped))

    def _open_wrapped(self, member_id: uuid.UUID, kek_id: str, wrapped: bytes) -> bytes:
        kek = self.keyring.get(kek_id)
        # One AESGCM object per KEK (the keyring holds the key itself anyway), rebuilt when
        # the keyring hands out another key under that id.
        known = self._kek_openers.get(kek_id)
        if known is None or known[0] is not kek:
            known = self._kek_openers[kek_id] = (kek, cipher.Opener(kek))
        try:
            return known[1].open(wrapped, _dek_aad(member_id, kek_id))
        except IntegrityError:
            log.error("integrity: wrapped data key failed to open", extra={"kek": kek_id})
            raise

    async def shred(self, member_id: uuid.UUID) -> bool:
        """Destroy a member's data key: from this commit on nothing of theirs can be opened."""
        deleted = await MemberKey.filter(member_id=member_id).delete()
        return bool(deleted)

    async def check_keyring(self) -> None:
        """Refuse to run when stored keys were wrapped by KEKs this keyring does not hold, or
        by a KEK whose id matches but whose bytes do not (one sample key per KEK is opened).

        This is what stops a freshly generated dev keyring from silently replacing the real one.
        """
        rows = await MemberKey.all().distinct().values_list("kek_id", flat=True)
        used = {str(kek_id) for kek_id in rows}
        missing = sorted(used - set(self.keyring.keys))
        if missing:
            raise ConfigError(
                "Member data keys are wrapped by key-encryption keys this server does not have "
                f"({', '.join(missing)}). Restore COOP_MASTER_KEY or the keyring file; "
                "refusing to start."
            )
        wrong = [kek_id for kek_id in sorted(used) if not await self._kek_opens_a_key(kek_id)]
        if wrong:
            raise ConfigError(
                f"The key-encryption keys {', '.join(wrong)} do not open the member data keys "
                "stored under their ids (wrong key for that id). Restore the right "
                "COOP_MASTER_KEY or keyring file; refusing to start."
            )

    async def _kek_opens_a_key(self, kek_id: str) -> bool:
        sample = await MemberKey.filter(kek_id=kek_id).first()
        if sample is None:
            return True
        try:
            self._unwrap(sample)
        except IntegrityError:
            return False
        return True

    async def rotate(self, *, new_kek: bool = True, batch_size: int = 500) -> RotationReport:
        """Re-wrap every data key under the active KEK, in committed batches (resumable).

        With a file-backed keyring and `new_kek`, a new KEK is generated first, unless the file
        still holds more than one KEK: then an earlier rotation was interrupted and this one
        resumes it under the active KEK instead of starting over. Old KEKs are retired from the
        file only after a count shows that no stored key still uses them.
        """
        resumed = self.keyring.is_file_backed and len(self.keyring.keys) > 1
        if new_kek and self.keyring.is_file_backed and not resumed:
            self.keyring.add_new_active()
        active = self.keyring.active_id
        rewrapped = 0
        while batch := await self._rewrap_batch(active, batch_size):
            rewrapped += batch
        remaining = await MemberKey.filter(kek_id__not=active).count()
        retired: tuple[str, ...] = ()
        if remaining == 0 and self.keyring.is_file_backed:
            retired = tuple(sorted(set(self.keyring.keys) - {active}))
            self.keyring.retire(set(retired))
        log.info(
            "vault: rotation pass done",
            extra={"kek": active, "rewrapped": rewrapped, "remaining": remaining},
        )
        return RotationReport(
            rewrapped=rewrapped,
            remaining=remaining,
            active_kek=active,
            retired=retired,
            resumed=resumed,
        )

    async def _rewrap_batch(self, active: str, batch_size: int) -> int:
        """Re-wrap up to `batch_size` keys not yet under `active`, in one transaction."""
        async with in_transaction():
            rows = await MemberKey.filter(kek_id__not=active).limit(batch_size)
            for row in rows:
                wrapped = cipher.seal(
                    self.keyring.active, self._unwrap(row), _dek_aad(row.member_id, active)
                )
                # Compare-and-set: a key shredded or re-wrapped meanwhile is left alone.
                await MemberKey.filter(member_id=row.member_id, kek_id=row.kek_id).update(
                    wrapped=wrapped, kek_id=active, rotated_at=utcnow()
                )
        return len(rows)

    # -- keyed hashes ----------------------------------------------------------------------
    def blind_index(self, value: str, *, purpose: str) -> str:
        """A keyed, deterministic hash for lookups of sealed values (e.g. email at login)."""
        return cipher.keyed_hash(self._index_key, f"{purpose}\x00{value}")

    def csrf_token(self, binding: str) -> str:
        return cipher.keyed_hash(self._csrf_key, binding)

    def app_webhook_secret(self, client_id: str, salt: str) -> str:
        """An app's webhook signing secret: HMAC-SHA256(k_webhook, client_id, salt), base64url.

        Only the salt is stored. Without the server secret nothing in the database yields the
        secret, and a new salt gives a new, unrelated secret (rotation).
        """
        mac = hmac.digest(self._webhook_key, _aad("coop-webhook-v1", client_id, salt), "sha256")
        return WEBHOOK_SECRET_PREFIX + base64.urlsafe_b64encode(mac).decode().rstrip("=")

    # -- coop as an OAuth client -------------------------------------------------------------
    def atproto_client_key(self) -> EcKey:
        """The ES256 key coop's atproto OAuth client signs its assertions with (published at
        its jwks_uri). Derived from the server secret: a new secret is a new key."""
        if self._client_key is None:
            self._client_key = EcKey.derive(self._client_root, "coop atproto client key v1")
        return self._client_key

    # -- consent receipt signing ------------------------------------------------------------
    async def receipt_key(self) -> SigningKey:
        """The key that signs receipts now: the newest published generation's, provided this
        server's secret still derives it. After a change of the server secret it does not,
        and the next generation is published for the new secret (the old public key stays)."""
        row = await ReceiptKey.all().order_by("-generation").first()
        if row is not None:
            key = derive_signing_key(self._receipt_root, row.generation)
            if key.kid == row.kid:
                return key
        try:
            return await self._publish_receipt_key((row.generation if row else 0) + 1)
        except OperationalError:  # another process published it first (same generation)
            row = await ReceiptKey.all().order_by("-generation").first()
            assert row is not None
            return derive_signing_key(self._receipt_root, row.generation)

    async def rotate_receipt_key(self) -> SigningKey:
        """Start signing with the next generation; earlier public keys stay published."""
        row = await ReceiptKey.all().order_by("-generation").first()
        return await self._publish_receipt_key((row.generation if row else 0) + 1)

    async def _publish_receipt_key(self, generation: int) -> SigningKey:
        key = derive_signing_key(self._receipt_root, generation)
        now = utcnow()
        async with in_transaction():
            await ReceiptKey.filter(retired_at__isnull=True).update(retired_at=now)
            await ReceiptKey.create(
                generation=generation, kid=key.kid, public_key=b64url(key.public), created_at=now
            )
        log.info("vault: receipt signing key published", extra={"kid": key.kid})
        return key

    @staticmethod
    async def receipt_public_keys() -> list[ReceiptKey]:
        """Every receipt key ever published, oldest first (the well-known key set)."""
        return await ReceiptKey.all().order_by("generation")

    @staticmethod
    def token_hash(token: str) -> str:
        return cipher.token_hash(token)

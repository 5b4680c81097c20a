"""A ZIP archive written as a stream of byte chunks, with the standard library's zipfile.

zipfile writes to an unseekable file by putting each entry's sizes and CRC in a data
descriptor after its data; we hand it a sink that only collects bytes, and drain the sink
after every write. Memory stays at one page of data plus the deflate window, whatever the
archive's size, and no temporary file ever holds member data.
"""

from __future__ import annotations

import io
import sys
import time
import zipfile
from collections.abc import AsyncIterable, AsyncIterator


class _Sink(io.RawIOBase):
    """A write-only, unseekable file that keeps what was written until drained."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


# ZipFile.open(ZipInfo, "w") deflates at the ZipInfo's own level, never at the ZipFile's
# `compresslevel`. That field is public from Python 3.13 (`compress_level`) and named
# `_compresslevel` in 3.11 and 3.12; tests/portability/test_zipstream.py checks it is honoured.
_LEVEL_FIELD = "compress_level" if sys.version_info >= (3, 13) else "_compresslevel"


class ZipStream:
    """Build an archive entry by entry; every method yields the bytes ready to send."""

    def __init__(self, *, compresslevel: int = 6) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, mode="w", compression=zipfile.ZIP_DEFLATED)
        self._level = compresslevel
        self._when = time.gmtime()[:6]

    async def entry(self, name: str, pieces: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        info = zipfile.ZipInfo(name, date_time=self._when)
        info.compress_type = zipfile.ZIP_DEFLATED
        setattr(info, _LEVEL_FIELD, self._level)
        info.external_attr = 0o600 << 16
        with self._zip.open(info, mode="w", force_zip64=True) as handle:
            async for piece in pieces:
                handle.write(piece)
                out = self._sink.drain()
                if out:
                    yield out
        yield self._sink.drain()

    def close(self) -> bytes:
        self._zip.close()
        return self._sink.drain()

"""A ZIP archive written as a stream of byte chunks, deflated by ISA-L.

The framing is what the standard library's zipfile writes to an unseekable file with
`force_zip64=True`, byte for byte (tests/portability/test_zipstream.py compares the two):
each entry's CRC and sizes in a ZIP64 data descriptor after its data, the central directory
at the end. We write it ourselves only because zipfile deflates with zlib and takes no other
compressor: ISA-L's deflate (the `isal` package) is ~4x faster than zlib's fastest level on
the export's JSON, for a smaller archive (docs/benchmarks.md). Memory stays at one piece of
data plus the deflate window, whatever the archive's size, and no temporary file ever holds
member data.
"""

from __future__ import annotations

import struct
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from isal import isal_zlib

# Record layouts and constants of the ZIP format (PKWARE's APPNOTE), as zipfile names them.
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")
_DESCRIPTOR64 = struct.Struct("<4sLQQ")
_ZIP64_EXTRA = struct.Struct("<HHQQ")
_ZIP64_LIMIT = (1 << 31) - 1  # zipfile's threshold for ZIP64 fields
_ZIP64_VERSION = 45
_UNIX = 3  # "made by" system: the permissions in external_attr are Unix ones
_DEFLATED = 8
_DATA_DESCRIPTOR = 0x08
_UTF8_NAME = 0x800
_PRIVATE = 0o600 << 16  # rw------- for whoever unpacks it


class Deflater(Protocol):
    """A raw deflate stream, as zlib's and ISA-L's `compressobj(level, DEFLATED, -15)` are."""

    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


def isal_deflater(level: int) -> Deflater:
    deflater: Deflater = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    return deflater


@dataclass(frozen=True)
class _Written:
    """What the central directory says about one entry."""

    name: bytes
    flags: int
    crc: int
    compressed: int
    size: int
    offset: int


class ZipStream:
    """Build an archive entry by entry; every method yields the bytes ready to send."""

    def __init__(  # compresslevel: ISA-L's 0 (fastest) to 3, else a ValueError
        self,
        *,
        compresslevel: int = isal_zlib.ISAL_DEFAULT_COMPRESSION,
        deflater: Callable[[int], Deflater] = isal_deflater,
    ) -> None:
        deflater(compresslevel)  # a level the deflater lacks fails here, not mid-stream
        self._level = compresslevel
        self._deflater = deflater
        self.date_time = time.gmtime()[:6]  # of every entry, as zipfile.ZipInfo.date_time
        year, month, day, hour, minute, second = self.date_time
        self._dostime = hour << 11 | minute << 5 | second // 2
        self._dosdate = (year - 1980) << 9 | month << 5 | day
        self._written: list[_Written] = []
        self._offset = 0  # bytes yielded so far

    async def entry(self, name: str, pieces: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        try:
            encoded, flags = name.encode("ascii"), _DATA_DESCRIPTOR
        except UnicodeEncodeError:
            encoded, flags = name.encode(), _DATA_DESCRIPTOR | _UTF8_NAME
        offset = self._offset
        # Sizes and CRC follow the data: the local header carries zeros (ZIP64 extra included).
        extra = _ZIP64_EXTRA.pack(1, 16, 0, 0)
        header = _LOCAL.pack(
            *(b"PK\x03\x04", _ZIP64_VERSION, 0, flags, _DEFLATED, self._dostime, self._dosdate),
            *(0, 0xFFFFFFFF, 0xFFFFFFFF, len(encoded), len(extra)),
        )
        out = header + encoded + extra
        deflate = self._deflater(self._level)
        crc = size = compressed = 0
        async for piece in pieces:
            crc = isal_zlib.crc32(piece, crc)
            size += len(piece)
            data = deflate.compress(piece)
            compressed += len(data)
            if data:
                yield self._sent(out + data if out else data)
                out = b""
        data = deflate.flush()
        compressed += len(data)
        descriptor = _DESCRIPTOR64.pack(b"PK\x07\x08", crc, compressed, size)
        yield self._sent(out + data + descriptor)
        self._written.append(_Written(encoded, flags, crc, compressed, size, offset))

    def _sent(self, chunk: bytes) -> bytes:
        self._offset += len(chunk)
        return chunk

    def close(self) -> bytes:
        """The central directory and the end records."""
        start = self._offset
        directory = b"".join(self._central(w) for w in self._written)
        count, size = len(self._written), len(directory)
        end = b""
        if count > 0xFFFF or start > _ZIP64_LIMIT or size > _ZIP64_LIMIT:
            end += _END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, start)
            end += _LOCATOR64.pack(b"PK\x06\x07", 0, start + size, 1)
            count, size, start = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(start, 0xFFFFFFFF)
        end += _END.pack(b"PK\x05\x06", 0, 0, count, count, size, start, 0)
        return self._sent(directory + end)

    def _central(self, w: _Written) -> bytes:
        large: list[int] = []
        compressed, size, offset = w.compressed, w.size, w.offset
        if size > _ZIP64_LIMIT or compressed > _ZIP64_LIMIT:
            large += [size, compressed]
            size = compressed = 0xFFFFFFFF
        if offset > _ZIP64_LIMIT:
            large.append(offset)
            offset = 0xFFFFFFFF
        extra = struct.pack(f"<HH{len(large)}Q", 1, 8 * len(large), *large) if large else b""
        record = _CENTRAL.pack(
            *(b"PK\x01\x02", _ZIP64_VERSION, _UNIX, _ZIP64_VERSION, 0, w.flags, _DEFLATED),
            *(self._dostime, self._dosdate, w.crc, compressed, size, len(w.name), len(extra)),
            *(0, 0, 0, _PRIVATE, offset),
        )
        return record + w.name + extra

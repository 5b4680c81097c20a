"""The streamed ZIP: readable by zipfile, entries dated and private, deflated at the level asked."""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import AsyncIterator

from coop.portability.zipstream import ZipStream


def _text() -> bytes:
    # Words from a small vocabulary: compressible, but not so trivially that levels agree.
    rng = random.Random(7)
    words = ["".join(rng.choices("abcdefghij", k=rng.randint(2, 8))) for _ in range(500)]
    return " ".join(rng.choice(words) for _ in range(40_000)).encode()


async def _archive(level: int, data: bytes) -> bytes:
    stream = ZipStream(compresslevel=level)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 65_536):
            yield data[start : start + 65_536]

    out = bytearray()
    async for chunk in stream.entry("records.json", pieces()):
        out.extend(chunk)
    out.extend(stream.close())
    return bytes(out)


async def test_entries_read_back_dated_private_and_deflated() -> None:
    data = _text()
    with zipfile.ZipFile(io.BytesIO(await _archive(6, data))) as zf:
        assert zf.testzip() is None
        (info,) = zf.infolist()
        assert zf.read(info) == data
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.external_attr == 0o600 << 16
        assert info.date_time != (1980, 1, 1, 0, 0, 0)


async def test_the_compression_level_asked_for_is_the_one_used() -> None:
    data = _text()
    fast, small = await _archive(1, data), await _archive(9, data)
    for archive in (fast, small):
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            assert zf.read("records.json") == data
    assert len(fast) > len(small) * 1.05, (len(fast), len(small))

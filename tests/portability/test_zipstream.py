"""The streamed ZIP: readable by zipfile, entries dated and private, deflated at the level asked,
and framed exactly as zipfile frames a streamed archive."""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from collections.abc import AsyncIterator

import pytest

from coop.portability.zipstream import Deflater, ZipStream


def _text() -> bytes:
    # Words from a small vocabulary: compressible, but not so trivially that levels agree.
    rng = random.Random(7)
    words = ["".join(rng.choices("abcdefghij", k=rng.randint(2, 8))) for _ in range(500)]
    return " ".join(rng.choice(words) for _ in range(40_000)).encode()


async def _pieces(data: bytes, size: int = 65_536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _archive(stream: ZipStream, entries: dict[str, bytes]) -> bytes:
    out = bytearray()
    for name, data in entries.items():
        async for chunk in stream.entry(name, _pieces(data)):
            out.extend(chunk)
    out.extend(stream.close())
    return bytes(out)


def _zlib(level: int) -> Deflater:
    deflater: Deflater = zlib.compressobj(level, zlib.DEFLATED, -15)
    return deflater


class _Unseekable(io.RawIOBase):
    """What zipfile sees when it writes to a network stream: it can tell, never seek."""

    def __init__(self, start: int = 0) -> None:
        self.data = bytearray()
        self.start = start

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.data.extend(data)
        return len(data)

    def tell(self) -> int:
        return self.start + len(self.data)


def _zipfile_archive(
    entries: dict[str, bytes], date_time: tuple[int, ...], level: int, start: int = 0
) -> bytes:
    """The reference: zipfile's own streamed archive (force_zip64, private entries)."""
    sink = _Unseekable(start)
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=date_time)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            # public as `compress_level` from Python 3.13, `_compresslevel` before
            level_field = "compress_level" if hasattr(info, "compress_level") else "_compresslevel"
            setattr(info, level_field, level)
            with zf.open(info, mode="w", force_zip64=True) as handle:
                for start_at in range(0, len(data), 65_536):
                    handle.write(data[start_at : start_at + 65_536])
    return bytes(sink.data)


ENTRIES = {
    "README.md": b"# hello\n",
    "records.json": _text(),
    "empty.json": b"",
    "bündel/ü.json": b"{}",  # a UTF-8 name: its flag set in both headers
}


async def test_entries_read_back_dated_private_and_deflated() -> None:
    data = _text()
    with zipfile.ZipFile(io.BytesIO(await _archive(ZipStream(), {"records.json": data}))) as zf:
        assert zf.testzip() is None
        (info,) = zf.infolist()
        assert zf.read(info) == data
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.external_attr == 0o600 << 16
        assert info.date_time != (1980, 1, 1, 0, 0, 0)


async def test_the_framing_is_zipfiles_byte_for_byte() -> None:
    # With zlib's deflate in both, the only difference left would be the framing.
    stream = ZipStream(compresslevel=6, deflater=_zlib)
    ours = await _archive(stream, ENTRIES)
    assert ours == _zipfile_archive(ENTRIES, stream.date_time, 6)


async def test_offsets_past_zip64s_threshold_are_framed_as_zipfile_frames_them() -> None:
    # An archive whose entries start past 2 GiB: ZIP64 offsets in the central directory and
    # the ZIP64 end records. Writing 2 GiB first would take a minute, so both writers are
    # told they already wrote 3 GiB (zipfile through its file's tell()).
    start = 3 << 30
    stream = ZipStream(compresslevel=6, deflater=_zlib)
    stream._offset = start  # nothing public writes 3 GiB in a unit test
    ours = await _archive(stream, ENTRIES)
    assert ours == _zipfile_archive(ENTRIES, stream.date_time, 6, start=start)


async def test_non_ascii_names_and_empty_entries_read_back() -> None:
    with zipfile.ZipFile(io.BytesIO(await _archive(ZipStream(), ENTRIES))) as zf:
        assert zf.testzip() is None
        assert {name: zf.read(name) for name in zf.namelist()} == ENTRIES


async def test_the_compression_level_asked_for_is_the_one_used() -> None:
    data = _text()
    fast = await _archive(ZipStream(compresslevel=0), {"r": data})
    small = await _archive(ZipStream(compresslevel=3), {"r": data})
    for archive in (fast, small):
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            assert zf.read("r") == data
    assert len(fast) > len(small) * 1.05, (len(fast), len(small))


def test_a_level_isal_lacks_is_refused_before_any_byte() -> None:
    with pytest.raises(ValueError, match="between 0 and 3"):
        ZipStream(compresslevel=9)

"""Peak memory of the largest accepted upload, against a baseline measured in the same run.

Builds the largest archive coop accepts by default (a ZIP just under COOP_MAX_UPLOAD_BYTES,
50 MiB, whose outbox.json is just under the 100 MiB member cap, padded with incompressible
media), then runs each case in a fresh child process and prints its peak RSS:

- baseline: the child imports the archive connector and holds the upload bytes;
- streaming: the same, then reads the archive as the server does (check pass + batch pass);
- whole-tree: the same upload parsed the old way (json.loads of the member) for comparison;
- feed: a 5 MiB feed (MAX_FEED_BYTES) checked and parsed.

Usage: python bench/uploads.py
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(ROOT))

UPLOAD_CAP = 50 * 1024 * 1024
MEMBER_CAP = 100 * 1024 * 1024

CHILD = """
import sys
sys.path.insert(0, {root!r})
from coop.connectors.builtin import archive
data = open(sys.argv[1], "rb").read()
case = sys.argv[2]
if case == "streaming":
    count = archive.count_posts(data)
    records = archive.iter_archive(data)
    while batch := archive._next_batch(records):
        pass
elif case == "whole-tree":
    import json, zipfile, io
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        tree = json.loads(z.read("outbox.json"))
elif case == "feed":
    import asyncio
    from coop.connectors.builtin import feed
    asyncio.run(feed.parse_feed(data))
# VmHWM: this process's peak RSS (ru_maxrss would carry the parent's over fork + exec).
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(int(hwm) * 1024)
"""


def note(n: int) -> dict[str, object]:
    return {
        "type": "Create",
        "object": {
            "type": "Note",
            "id": f"https://social.example/users/me/statuses/{n}",
            "url": f"https://social.example/@me/{n}",
            "published": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z",
            "content": f"<p>Toot {n}: " + "words and more words " * 20 + "</p>",
            "replies": {"totalItems": n % 7},
            "likes": {"totalItems": n % 11},
            "shares": {"totalItems": n % 3},
        },
    }


def outbox_bytes() -> bytes:
    sample = len(json.dumps(note(999_999))) + 2  # the longest entry
    count = (MEMBER_CAP - 4096) // sample
    items = ",".join(json.dumps(note(n)) for n in range(count))
    return (
        '{"@context": "https://www.w3.org/ns/activitystreams", "orderedItems": [' + items + "]}"
    ).encode()


def largest_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("outbox.json", outbox_bytes())
        room = UPLOAD_CAP - buffer.tell() - 64 * 1024
        archive.writestr("media/padding.bin", os.urandom(max(room, 0)), zipfile.ZIP_STORED)
    return buffer.getvalue()


def feed_bytes() -> bytes:
    entry = (
        "<item><title>Post {n}</title><link>https://blog.example/{n}</link>"
        "<guid>https://blog.example/{n}</guid><pubDate>Mon, 06 Oct 2025 10:00:00 GMT</pubDate>"
        "<description>" + "a summary of the post " * 10 + "</description></item>"
    )
    items, size, n = [], 0, 0
    while size < 5 * 1024 * 1024 - 4096:
        items.append(entry.format(n=n))
        size += len(items[-1])
        n += 1
    items.pop()
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>'
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def peak(path: Path, case: str) -> int:
    code = CHILD.format(root=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), case], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"{case} failed:\n{out.stderr[-2000:]}")
    return int(out.stdout.strip().splitlines()[-1])


def mib(n: int) -> str:
    return f"{n / 1024 / 1024:8.1f} MiB"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        upload = Path(folder) / "archive.zip"
        upload.write_bytes(largest_archive())
        feed = Path(folder) / "feed.xml"
        feed.write_bytes(feed_bytes())
        with zipfile.ZipFile(upload) as archive:
            member = archive.getinfo("outbox.json").file_size
        print(f"upload {mib(upload.stat().st_size)}, outbox.json {mib(member)} uncompressed")
        base = peak(upload, "baseline")
        print(f"baseline (imports + upload bytes held) {mib(base)}")
        for case in ("streaming", "whole-tree"):
            value = peak(upload, case)
            print(
                f"{case:10s} peak {mib(value)}  above baseline {mib(value - base)}  "
                f"x{value / base:.2f} of baseline"
            )
        feed_base = peak(feed, "baseline")
        value = peak(feed, "feed")
        print(
            f"feed {mib(feed.stat().st_size)}: peak {mib(value)}  above its baseline "
            f"{mib(value - feed_base)}"
        )


if __name__ == "__main__":
    main()

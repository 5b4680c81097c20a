"""The `instagram` connector: the JSON "Download your information" export the member made.

Files read (matched anywhere in the ZIP, so every year's folder layout works):
- posts: `posts_N.json` (2021 on, `content/`, `your_instagram_activity/content/` or
  `…/media/`): a list of `{"media": [{"uri", "creation_timestamp", "title"}], "title",
  "creation_timestamp"}`, the caption in the post's `title` or, for one photo, the media's.
- reels: `reels.json`: `{"ig_reels_media": [{"media": [...]}]}`.
- the 2018-2020 layout: `media.json`: `{"photos": [...], "videos": [...]}` of
  `{"caption", "taken_at", "path"}`.
- comments: `post_comments_N.json` / `reels_comments.json` (2023 on: a list, or
  `{"comments_media_comments"|"comments_reels_comments": [...]}` before) of
  `{"string_map_data": {"Comment", "Media Owner", "Time"}}`; 2018-2020 `comments.json`:
  `{"media_comments": [[time, text, owner], ...]}`.
Never read: "Media Owner" (whose post it was) and every other file.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from coop.connectors import spec
from coop.connectors.builtin.archive import iso_time
from coop.connectors.builtin.exports import (
    ExportConnector,
    Part,
    clip,
    digest,
    epoch,
    json_lists,
    meta_text,
)

POSTS = re.compile(r"(^|/)(content|media)/posts_\d+\.json$")
REELS = re.compile(r"(^|/)(content|media)/reels\.json$")
OLD_MEDIA = re.compile(r"(^|/)media\.json$")
COMMENTS = re.compile(
    r"(^|/)comments/(post_comments(_\d+)?|reels_comments)\.json$|(^|/)comments\.json$"
)
VIDEO = (".mp4", ".mov", ".webm")


def _media_id(uri: Any) -> str | None:
    """The media file's name: the same photo keeps it across export layouts (its folder
    changed from `photos/` to `media/posts/`)."""
    name = str(uri).rsplit("/", 1)[-1] if isinstance(uri, str) else ""
    return name or None


def _post(kind: str, media: list[Any], caption: Any, when: datetime | None) -> spec.Record | None:
    first = next((m for m in media if isinstance(m, dict)), None)
    media_id = _media_id(first.get("uri") if first else None)
    when = when or epoch(first.get("creation_timestamp") if first else None)
    if media_id is None or when is None:
        return None
    uris = [str(m.get("uri", "")).lower() for m in media if isinstance(m, dict)]
    videos = sum(1 for u in uris if u.endswith(VIDEO))
    counts = {k: v for k, v in (("photos", len(uris) - videos), ("videos", videos)) if v}
    return spec.Record(
        kind=spec.POST,
        external_id=f"instagram:{kind}:{media_id}",
        occurred_at=when,
        counts=counts,
        text=clip(meta_text(caption if caption else first.get("title") if first else None)),
    )


def post_record(item: Any) -> spec.Record | None:
    if not isinstance(item, dict) or not isinstance(item.get("media"), list):
        return None
    return _post("post", item["media"], item.get("title"), epoch(item.get("creation_timestamp")))


def reel_record(item: Any) -> spec.Record | None:
    if not isinstance(item, dict) or not isinstance(item.get("media"), list):
        return None
    return _post("reel", item["media"], item.get("title"), epoch(item.get("creation_timestamp")))


def old_media_record(item: Any) -> spec.Record | None:
    """`media.json` (2018-2020): `{"caption", "taken_at", "path"}`."""
    if not isinstance(item, dict):
        return None
    media = [{"uri": item.get("path")}]
    return _post("post", media, item.get("caption"), iso_time(item.get("taken_at")))


def _comment(when: datetime | None, text: Any) -> spec.Record | None:
    if when is None:
        return None
    return spec.Record(
        kind=spec.ACTIVITY,
        external_id=f"instagram:comment:{int(when.timestamp())}:{digest(meta_text(text))}",
        occurred_at=when,
        title="comment",  # a type and a date; neither the text nor whose post it was
    )


def comment_record(item: Any) -> spec.Record | None:
    if isinstance(item, list) and len(item) >= 2:  # 2018-2020: [time, text, owner]
        return _comment(iso_time(item[0]), item[1])
    data = item.get("string_map_data") if isinstance(item, dict) else None
    if not isinstance(data, dict):
        return None
    return _comment(epoch(_field(data, "Time", "timestamp")), _field(data, "Comment", "value"))


def _field(data: dict[str, Any], name: str, key: str) -> Any:
    entry = data.get(name)
    return entry.get(key) if isinstance(entry, dict) else None


class InstagramConnector(ExportConnector):
    name: ClassVar[str] = "instagram"
    title: ClassVar[str] = "Instagram (your downloaded information)"
    description: ClassVar[str] = (
        'Reads the ZIP you get from Instagram\'s "Download your information" in JSON '
        "format: your own posts and reels (date, caption, how many photos and videos) and "
        "the dates of your comments."
    )
    never_reads: ClassVar[tuple[str, ...]] = (
        "messages, followers and following lists, close friends, contacts",
        "ad interests, your activity off Instagram, location and search history",
        "names or handles of other people: whose post you commented on, who is tagged",
        "stories, the text of your comments (only when you commented), photos and videos "
        "themselves",
    )
    parts: ClassVar[tuple[Part, ...]] = (
        Part(POSTS, json_lists((), to_record=post_record)),
        Part(REELS, json_lists(("ig_reels_media",), to_record=reel_record)),
        Part(OLD_MEDIA, json_lists(("photos",), ("videos",), to_record=old_media_record)),
        Part(
            COMMENTS,
            json_lists(
                (),
                ("comments_media_comments",),
                ("comments_reels_comments",),
                ("media_comments",),
                to_record=comment_record,
            ),
        ),
    )
    missing: ClassVar[str] = (
        "No posts_1.json, reels.json or media.json in that archive. Download your "
        "information from Instagram in JSON format, not HTML."
    )


__all__ = ["InstagramConnector", "comment_record", "old_media_record", "post_record"]

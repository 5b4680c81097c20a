"""The `facebook` connector: the JSON "Download Your Information" export the member made.

Files read (matched anywhere in the ZIP, so every year's folder layout works):
- posts: `your_posts__check_ins__photos_and_videos_N.json` (2022 on, under
  `your_activity_across_facebook/posts/` or `your_facebook_activity/posts/`) and
  `your_posts_N.json` (2019-2022, `posts/`): a list of posts; `your_posts.json` (2018):
  `{"status_updates": [...]}`. A post has `timestamp`, `data: [{"post": text}]`,
  `attachments: [{"data": [{"media"|"external_context"|"place"|…: …}]}]`.
- comments: `comments.json` under `comments/` or `comments_and_reactions/`:
  `{"comments_v2": [...]}` (2021 on) or `{"comments": [...]}` (before).
Never read: the `title` ("Alice wrote on Bob's timeline") and `tags` of a post and the
`author` of a comment (names), and every other file.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from coop.connectors import spec
from coop.connectors.builtin.exports import (
    ExportConnector,
    Part,
    clip,
    digest,
    epoch,
    json_lists,
    meta_text,
)

POSTS = re.compile(
    r"(^|/)(your_posts__check_ins__photos_and_videos_\d+|your_posts_\d+|your_posts)\.json$"
)
COMMENTS = re.compile(r"(^|/)(comments|comments_and_reactions)/comments\.json$")
ATTACHMENT_KINDS = {"media": "media", "external_context": "links", "place": "places"}
VIDEO = (".mp4", ".mov", ".webm")


def _text(entries: Any, key: str) -> str | None:
    """The first `key` text in a `data` list (`[{"post": …}, {"update_timestamp": …}]`)."""
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get(key), str):
            return meta_text(entry[key])
    return None


def _attachments(post: dict[str, Any]) -> dict[str, int]:
    """How many photos, videos, links and places the post carried (kinds, never content)."""
    counts: dict[str, int] = {}
    for attachment in post.get("attachments") or []:
        for entry in attachment.get("data") or [] if isinstance(attachment, dict) else []:
            for key in entry if isinstance(entry, dict) else ():
                kind = ATTACHMENT_KINDS.get(key)
                if kind == "media":
                    uri = str((entry[key] or {}).get("uri", "")).lower()
                    kind = "videos" if uri.endswith(VIDEO) else "photos"
                if kind:
                    counts[kind] = counts.get(kind, 0) + 1
    return counts


def post_record(post: Any) -> spec.Record | None:
    if not isinstance(post, dict):
        return None
    when = epoch(post.get("timestamp"))
    if when is None:
        return None
    text = clip(_text(post.get("data"), "post"))
    counts = _attachments(post)
    return spec.Record(
        kind=spec.POST,
        # The export gives posts no id: the time and content identify one across exports.
        external_id=f"facebook:post:{int(when.timestamp())}:{digest(text, sorted(counts.items()))}",
        occurred_at=when,
        counts=counts,
        text=text,
    )


def comment_record(item: Any) -> spec.Record | None:
    if not isinstance(item, dict):
        return None
    when = epoch(item.get("timestamp"))
    if when is None:
        return None
    comment = None
    for entry in item.get("data") or []:
        if isinstance(entry, dict) and isinstance(entry.get("comment"), dict):
            comment = entry["comment"].get("comment")
    return spec.Record(
        kind=spec.ACTIVITY,
        external_id=f"facebook:comment:{int(when.timestamp())}:{digest(meta_text(comment))}",
        occurred_at=when,
        title="comment",  # an activity is a type and a date: the comment's text is not kept
    )


class FacebookConnector(ExportConnector):
    name: ClassVar[str] = "facebook"
    title: ClassVar[str] = "Facebook (your downloaded information)"
    description: ClassVar[str] = (
        'Reads the ZIP you get from Facebook\'s "Download your information" in JSON format: '
        "your own posts (date, text, and whether they carried photos, videos, links or "
        "places) and the dates of your comments."
    )
    never_reads: ClassVar[tuple[str, ...]] = (
        "messages, friends, followers and following lists, contacts",
        "ad interests, off-Facebook activity, location history, search history",
        "names or profiles of other people: tagged friends, whose post you commented on, "
        "and posts others wrote on your timeline",
        "the text of your comments (only when you commented), photos and videos themselves",
    )
    parts: ClassVar[tuple[Part, ...]] = (
        Part(POSTS, json_lists((), ("status_updates",), to_record=post_record)),
        Part(COMMENTS, json_lists(("comments_v2",), ("comments",), to_record=comment_record)),
    )
    missing: ClassVar[str] = (
        "No posts file (your_posts…json) or comments.json in that archive. Download your "
        "information from Facebook in JSON format, not HTML."
    )


__all__ = ["FacebookConnector", "comment_record", "post_record"]

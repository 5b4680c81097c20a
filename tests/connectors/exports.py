"""Fixture exports built from the documented formats of Facebook, Instagram and LinkedIn
("download your information"), in each layout coop reads, with Meta's escaping quirk and with
the files coop must never read (messages, friends, contacts) holding canaries."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

NEVER = "CANARY-NEVER-READ"  # only in files and fields coop must not read
FRIEND = "Bob Friendname"  # another person's name, where Meta writes one


def make_zip(files: dict[str, bytes | str], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def meta_escaped(text: str) -> str:
    """What Meta's exporter does to non-ASCII text: each UTF-8 byte becomes one character
    (so json.dumps writes `caf\\u00c3\\u00a9` for "café")."""
    return text.encode("utf-8").decode("latin-1")


def meta_json(value: Any) -> str:
    def fix(node: Any) -> Any:
        if isinstance(node, str):
            return meta_escaped(node)
        if isinstance(node, list):
            return [fix(n) for n in node]
        if isinstance(node, dict):
            return {fix(k): fix(v) for k, v in node.items()}
        return node

    return json.dumps(fix(value), ensure_ascii=True, indent=2)


# -- Facebook --------------------------------------------------------------------------------

FB_POSTS = [
    {
        "timestamp": 1764590400,  # 2025-12-01T12:00:00Z
        "data": [{"post": "Un café au soleil ☀ 😀"}, {"update_timestamp": 1764590500}],
        "attachments": [{"data": [{"media": {"uri": "your_facebook_activity/posts/media/a.jpg"}}]}],
        "title": f"Alice Member wrote on {FRIEND}'s timeline.",
        "tags": [{"name": FRIEND}],
    },
    {
        "timestamp": 1765195200,  # 2025-12-08T12:00:00Z
        "data": [{"post": "Read this"}],
        "attachments": [
            {"data": [{"external_context": {"url": "https://example.org/article"}}]},
            {"data": [{"media": {"uri": "your_facebook_activity/posts/media/v.mp4"}}]},
        ],
        "title": "Alice Member shared a link.",
    },
    {
        "timestamp": 1765800000,  # 2025-12-15T12:00:00Z: a photo without text
        "attachments": [{"data": [{"media": {"uri": "photos_and_videos/b.jpg"}}]}],
        "title": "Alice Member added a new photo.",
    },
]
FB_COMMENTS = [
    {
        "timestamp": 1765000000,
        "data": [{"comment": {"timestamp": 1765000000, "comment": NEVER, "author": "Alice"}}],
        "title": f"Alice Member commented on {FRIEND}'s post.",
    }
]
FB_NEVER = {
    "messages/inbox/bob_1/message_1.json": meta_json({"messages": [{"content": NEVER}]}),
    "connections/friends/your_friends.json": meta_json({"friends_v2": [{"name": NEVER}]}),
    "ads_information/ads_interests.json": meta_json({"topics_v2": [NEVER]}),
    "location/location_history.json": meta_json({"location_history_v2": [NEVER]}),
    "posts/other_people's_posts_to_your_timeline.json": meta_json(
        [{"timestamp": 1765000000, "data": [{"post": NEVER}]}]
    ),
}


def facebook_export(layout: str = "2024", posts: list[Any] | None = None) -> bytes:
    """A Facebook JSON export: `2024` (your_facebook_activity/…), `2022`
    (your_activity_across_facebook/…), `2020` (posts/your_posts_1.json, comments/comments.json
    with `comments`), `2018` (posts/your_posts.json with `status_updates`)."""
    posts = FB_POSTS if posts is None else posts
    files: dict[str, bytes | str] = dict(FB_NEVER)
    if layout in ("2024", "2022"):
        root = "your_facebook_activity" if layout == "2024" else "your_activity_across_facebook"
        half = len(posts) // 2 + 1
        files[f"{root}/posts/your_posts__check_ins__photos_and_videos_1.json"] = meta_json(
            posts[:half]
        )
        files[f"{root}/posts/your_posts__check_ins__photos_and_videos_2.json"] = meta_json(
            posts[half:]
        )
        files[f"{root}/comments_and_reactions/comments.json"] = meta_json(
            {"comments_v2": FB_COMMENTS}
        )
    elif layout == "2020":
        files["posts/your_posts_1.json"] = meta_json(posts)
        files["comments/comments.json"] = meta_json({"comments": FB_COMMENTS})
    else:
        files["posts/your_posts.json"] = meta_json({"status_updates": posts})
        files["comments/comments.json"] = meta_json({"comments": FB_COMMENTS})
    files["your_facebook_activity/posts/media/a.jpg"] = b"\xff\xd8 jpeg"
    return make_zip(files)


# -- Instagram -------------------------------------------------------------------------------

IG_CAROUSEL = {
    "media": [
        {
            "uri": "media/posts/202511/111_carousel_n.jpg",
            "creation_timestamp": 1764000000,
            "title": "",
        },
        {
            "uri": "media/posts/202511/112_carousel_n.mp4",
            "creation_timestamp": 1764000000,
            "title": "",
        },
    ],
    "title": "Sommer in Zürich 🌞",
    "creation_timestamp": 1764000000,
}
IG_SINGLE = {
    "media": [
        {
            "uri": "media/posts/202512/222_single_n.jpg",
            "creation_timestamp": 1765000000,
            "title": "Ein Foto",
            "cross_post_source": {"source_app": "FB"},
        }
    ]
}
IG_REEL = {
    "media": [
        {
            "uri": "media/reels/202512/333_reel_n.mp4",
            "creation_timestamp": 1765500000,
            "title": "Mein Reel",
        }
    ]
}
IG_COMMENT = {
    "media_list_data": [{"uri": ""}],
    "string_map_data": {
        "Comment": {"value": NEVER},
        "Media Owner": {"value": "bob.friend"},
        "Time": {"timestamp": 1765100000},
    },
}
IG_NEVER = {
    "your_instagram_activity/messages/inbox/bob_1/message_1.json": meta_json(
        {"messages": [{"content": NEVER}]}
    ),
    "connections/followers_and_following/followers_1.json": meta_json(
        [{"string_list_data": [{"value": NEVER}]}]
    ),
    "ads_information/instagram_ads_and_businesses/advertisers_using_your_activity.json": NEVER,
}


def instagram_export(layout: str = "2024") -> bytes:
    """An Instagram JSON export: `2024` (your_instagram_activity/content/…, comments as a list),
    `2022` (content/…, comments under `comments_media_comments`), `2019` (media.json,
    comments.json with `media_comments`)."""
    files: dict[str, bytes | str] = dict(IG_NEVER)
    if layout in ("2024", "2022"):
        root = "your_instagram_activity/" if layout == "2024" else ""
        files[f"{root}content/posts_1.json"] = meta_json([IG_CAROUSEL, IG_SINGLE])
        files[f"{root}content/reels.json"] = meta_json({"ig_reels_media": [IG_REEL]})
        comments = [IG_COMMENT] if layout == "2024" else {"comments_media_comments": [IG_COMMENT]}
        files[f"{root}comments/post_comments_1.json"] = meta_json(comments)
    else:
        photos = [
            {
                "caption": "Sommer in Zürich 🌞",
                "taken_at": "2025-11-24T16:00:00",
                "path": "photos/202511/111_carousel_n.jpg",
            },
            {
                "caption": "Ein Foto",
                "taken_at": "2025-12-06T05:46:40",
                "path": "photos/202512/222_single_n.jpg",
            },
        ]
        files["media.json"] = meta_json({"photos": photos, "videos": []})
        files["comments.json"] = meta_json(
            {"media_comments": [["2025-12-07T09:33:20", NEVER, "bob.friend"]]}
        )
    return make_zip(files)


# -- LinkedIn --------------------------------------------------------------------------------


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


LI_SHARES = [
    [
        "2025-11-03 08:15:00",
        "https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A7100000000000000001",
        'Wir stellen ein!\nZwei Zeilen, mit "Anführungszeichen", und Kommas.',
        "",
        "",
        "MEMBER_NETWORK",
    ],
    [
        "2025-11-20 17:45:10",
        "https://www.linkedin.com/feed/update/urn%3Ali%3AugcPost%3A7100000000000000002",
        "A post with a link",
        "https://example.org/",
        "https://media.licdn.com/x.jpg",
        "PUBLIC",
    ],
]


def linkedin_export(*, old: bool = False) -> bytes:
    """A LinkedIn data export; `old` drops the `Visibility` column (exports before 2022)."""
    header = ["Date", "ShareLink", "ShareCommentary", "SharedUrl", "MediaUrl", "Visibility"]
    shares = LI_SHARES
    if old:
        header, shares = header[:-1], [row[:-1] for row in LI_SHARES]
    return make_zip(
        {
            "Shares.csv": _csv(header, shares),
            "Comments.csv": _csv(
                ["Date", "Link", "Message"],
                [
                    [
                        "2025-11-21 09:00:00",
                        "https://www.linkedin.com/feed/update/urn:li:activity:9",
                        NEVER,
                    ]
                ],
            ),
            "Reactions.csv": _csv(
                ["Date", "Type", "Link"],
                [
                    [
                        "2025-11-22 10:00:00",
                        "LIKE",
                        "https://www.linkedin.com/feed/update/urn:li:activity:8",
                    ]
                ],
            ),
            "Connections.csv": _csv(["First Name", "Last Name"], [[NEVER, FRIEND]]),
            "messages.csv": _csv(["FROM", "CONTENT"], [[FRIEND, NEVER]]),
            "Profile.csv": _csv(["First Name"], [["Alice"]]),
        }
    )

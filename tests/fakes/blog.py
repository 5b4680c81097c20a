"""A fake self-hosted blog: RSS and Atom feeds, plus hostile and faulty variants.

    blog = Blog()
    blog.add_post("Hello", body="<p>first</p>")
    with LiveServer(blog.app()) as server:
        server.url("/rss.xml")

Routes: /rss.xml, /atom.xml (the posts), /billion-laughs.xml, /xxe.xml, /huge.xml (200 MB
generated lazily, never held in memory), /redirect-internal (302 to the metadata address),
/redirect?to=URL, /moved (302 to /rss.xml), /status/{code} (with `Retry-After` for 429/503),
/flaky.xml (fails `blog.failures` times with 503, then serves RSS), /slow.xml (waits
`blog.delay` seconds first), /gated.xml (logs the request at once, answers once `blog.gate`
is set: a test knows a sync is inside its request and holds it there), /not-a-feed. Every
request is logged in `blog.requests`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><guid>x</guid><pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>t</title>
<item><title>&xxe;</title><guid>x</guid><pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"""

HUGE_BYTES = 200 * 1024 * 1024


@dataclass
class Post:
    id: str
    title: str
    body: str
    published: datetime
    link: str
    comments: int | None = None


@dataclass
class Blog:
    title: str = "A self-hosted blog"
    posts: list[Post] = field(default_factory=list)
    requests: list[tuple[str, datetime]] = field(default_factory=list)
    failures: int = 0
    delay: float = 0.0
    huge_sent: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_post(
        self,
        title: str,
        *,
        body: str = "",
        published: datetime | None = None,
        comments: int | None = None,
    ) -> Post:
        n = len(self.posts) + 1
        when = published or datetime(2026, 11, 1, 9, 0, tzinfo=UTC) + timedelta(hours=n)
        post = Post(
            id=f"tag:blog.example,2026:post-{n}",
            title=title,
            body=body,
            published=when,
            link=f"https://blog.example/posts/{n}",
            comments=comments,
        )
        self.posts.append(post)
        return post

    # -- documents ---------------------------------------------------------------------
    def rss(self) -> bytes:
        items = []
        for p in self.posts:
            comments = (
                f"<slash:comments>{p.comments}</slash:comments>" if p.comments is not None else ""
            )
            items.append(
                f"<item><title>{escape(p.title)}</title><link>{p.link}</link>"
                f'<guid isPermaLink="false">{p.id}</guid>'
                f"<pubDate>{format_datetime(p.published, usegmt=True)}</pubDate>"
                f"<description>{escape(p.body)}</description>{comments}</item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<rss version="2.0" xmlns:slash="http://purl.org/rss/1.0/modules/slash/"><channel>'
            f"<title>{escape(self.title)}</title><link>https://blog.example/</link>"
            f"<description>posts</description>{''.join(items)}</channel></rss>"
        ).encode()

    def atom(self) -> bytes:
        entries = "".join(
            f"<entry><title>{escape(p.title)}</title><id>{p.id}</id>"
            f'<link href="{p.link}"/><published>{p.published.isoformat()}</published>'
            f"<updated>{p.published.isoformat()}</updated>"
            f'<summary type="html">{escape(p.body)}</summary></entry>'
            for p in self.posts
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{escape(self.title)}</title><id>urn:blog</id>"
            f"<updated>2026-11-01T00:00:00Z</updated>{entries}</feed>"
        ).encode()

    # -- the app -----------------------------------------------------------------------
    def app(self) -> Starlette:
        blog = self

        def log(request: Request) -> None:
            with blog._lock:
                blog.requests.append((request.url.path, datetime.now(UTC)))

        async def rss(request: Request) -> Response:
            log(request)
            return Response(blog.rss(), media_type="application/rss+xml")

        async def atom(request: Request) -> Response:
            log(request)
            return Response(blog.atom(), media_type="application/atom+xml")

        async def laughs(request: Request) -> Response:
            log(request)
            return Response(BILLION_LAUGHS, media_type="application/rss+xml")

        async def xxe(request: Request) -> Response:
            log(request)
            return Response(XXE, media_type="application/rss+xml")

        async def huge(request: Request) -> Response:
            log(request)

            async def chunks() -> AsyncIterator[bytes]:
                yield b'<?xml version="1.0"?><rss version="2.0"><channel><title>'
                chunk = b"x" * 65536
                for n in range(HUGE_BYTES // len(chunk)):
                    if n % 16 == 0 and await request.is_disconnected():
                        return  # the client hung up: stop generating
                    blog.huge_sent += len(chunk)
                    yield chunk
                yield b"</title></channel></rss>"

            return StreamingResponse(chunks(), media_type="application/rss+xml")

        async def redirect_internal(request: Request) -> Response:
            log(request)
            return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

        async def redirect(request: Request) -> Response:
            log(request)
            return RedirectResponse(request.query_params["to"], status_code=302)

        async def moved(request: Request) -> Response:
            log(request)
            return RedirectResponse("/rss.xml", status_code=302)

        async def status(request: Request) -> Response:
            log(request)
            code = int(request.path_params["code"])
            headers = {"Retry-After": "3"} if code in (429, 503) else {}
            return PlainTextResponse("no", status_code=code, headers=headers)

        async def flaky(request: Request) -> Response:
            log(request)
            if blog.failures > 0:
                blog.failures -= 1
                return PlainTextResponse("try later", status_code=503)
            return Response(blog.rss(), media_type="application/rss+xml")

        async def slow(request: Request) -> Response:
            log(request)
            await asyncio.sleep(blog.delay)
            return Response(blog.rss(), media_type="application/rss+xml")

        async def gated(request: Request) -> Response:
            log(request)
            # Set from the test's thread (an asyncio.Event is not thread-safe): poll it.
            while not blog.gate.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            return Response(blog.rss(), media_type="application/rss+xml")

        async def not_a_feed(request: Request) -> Response:
            log(request)
            return Response(b"<html><body>hello</body></html>", media_type="text/html")

        return Starlette(
            routes=[
                Route("/rss.xml", rss),
                Route("/atom.xml", atom),
                Route("/billion-laughs.xml", laughs),
                Route("/xxe.xml", xxe),
                Route("/huge.xml", huge),
                Route("/redirect-internal", redirect_internal),
                Route("/redirect", redirect),
                Route("/moved", moved),
                Route("/status/{code:int}", status),
                Route("/flaky.xml", flaky),
                Route("/slow.xml", slow),
                Route("/gated.xml", gated),
                Route("/not-a-feed", not_a_feed),
            ]
        )


__all__ = ["BILLION_LAUGHS", "XXE", "Blog", "Post"]

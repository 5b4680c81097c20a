"""The `github` connector: owned public repositories, public events and follower count.

Expiring user tokens (8 h, refresh token 6 months) are refreshed once when GitHub answers 401
or the stored expiry has passed; the new pair is persisted through `ctx.save_credentials`
before it is used, because GitHub invalidates the old refresh token the moment it answers
(checklist SY-05). `bad_refresh_token` means the member must reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import httpx

from coop.config import Settings
from coop.connectors import spec
from coop.connectors.builtin import rest
from coop.types import utcnow

log = logging.getLogger("coop.connectors.github")

PER_PAGE = 100
EXPIRY_LEEWAY = timedelta(seconds=60)


@dataclass(frozen=True)
class GitHubApp:
    """The operator's GitHub OAuth app (COOP_GITHUB_* settings)."""

    client_id: str = ""
    client_secret: str = ""
    base_url: str = "https://github.com"
    api_url: str = "https://api.github.com"

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/login/oauth/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/login/oauth/access_token"

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubApp:
        return cls(
            client_id=settings.github_client_id or "",
            client_secret=settings.github_client_secret or "",
            base_url=settings.github_base_url,
            api_url=settings.github_api_url,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubApp:
        """Parsed (and validated) exactly as the server's own Settings parse them."""
        return cls.from_settings(Settings.from_env(env))


def token_credentials(body: Mapping[str, Any]) -> dict[str, str]:
    """The credentials to store from a GitHub token response (expiry as absolute times)."""
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise spec.PermanentUpstreamError("GitHub sent a token response without a token")
    creds = {"access_token": access}
    now = utcnow()
    refresh = body.get("refresh_token")
    if isinstance(refresh, str) and refresh:
        creds["refresh_token"] = refresh
    for field, key in (
        ("expires_in", "expires_at"),
        ("refresh_token_expires_in", "refresh_expires_at"),
    ):
        seconds = body.get(field)
        if isinstance(seconds, int | str) and str(seconds).isdigit():
            creds[key] = (now + timedelta(seconds=int(seconds))).isoformat()
    return creds


class GitHubConnector:
    api_version: ClassVar[int] = spec.API_VERSION
    name: ClassVar[str] = "github"
    title: ClassVar[str] = "GitHub"
    description: ClassVar[str] = (
        "Your public repositories with their star and fork counts, the dates and types of your "
        "public activity, and how many followers you have."
    )
    reads: ClassVar[tuple[str, ...]] = (spec.REPOSITORY, spec.ACTIVITY, spec.AUDIENCE)
    never_reads: ClassVar[tuple[str, ...]] = (
        "your private repositories",
        "the code, issues, comments or commit messages in any repository",
        "who follows you or whom you follow (only the number of followers)",
        "who starred or forked your repositories (only the counts)",
        "your email addresses",
    )
    auth: ClassVar[spec.AuthMethod] = "oauth2"
    scopes: ClassVar[str] = ""  # no scope: read-only access to public information

    def __init__(self, app: GitHubApp | None = None) -> None:
        self.app = app or GitHubApp()

    def configure(self, env: Mapping[str, str]) -> None:
        self.app = GitHubApp.from_env(env)

    @property
    def unavailable_reason(self) -> str | None:
        if self.app.configured:
            return None
        return "GitHub is not available on this coop yet: its operator has not set it up."

    async def sync(
        self, ctx: spec.SyncContext, cursor: str | None
    ) -> AsyncIterator[spec.SyncBatch]:
        api = _Api(ctx, self.app)
        user = rest.json_body(await api.get(f"{self.app.api_url}/user"), dict)
        login = user.get("login")
        if not isinstance(login, str) or not login:
            raise spec.PermanentUpstreamError("GitHub sent a user without a login")
        day = ctx.now.date().isoformat()
        audience = spec.Record(
            kind=spec.AUDIENCE,
            external_id=f"followers:{user.get('id')}:{day}",
            occurred_at=ctx.now,
            counts={"followers": rest.count(user.get("followers"))},
        )
        yield spec.SyncBatch([audience], cursor)

        # Repositories are re-read every time: their counts change, the engine upserts.
        query = urlencode({"type": "owner", "per_page": PER_PAGE, "sort": "created"})
        async for page in api.pages(f"{self.app.api_url}/user/repos?{query}"):
            yield spec.SyncBatch([r for r in map(_repository, page) if r is not None], cursor)

        # Events come newest first: stop at the cursor; commit the new cursor only at the end,
        # so a run that dies half-way re-reads (and the engine de-duplicates) instead of losing.
        seen = int(cursor) if cursor and cursor.isdigit() else 0
        newest = seen
        events_url = f"{self.app.api_url}/users/{quote(login, safe='')}/events/public"
        async for page in api.pages(f"{events_url}?{urlencode({'per_page': PER_PAGE})}"):
            fresh = [e for e in page if _event_id(e) > seen]
            newest = max([newest, *(_event_id(e) for e in fresh)])
            yield spec.SyncBatch([_activity(e) for e in fresh], cursor)
            if len(fresh) < len(page):
                break
        if newest > seen:
            yield spec.SyncBatch([], str(newest))

    async def revoke(self, ctx: spec.SyncContext) -> None:
        """`DELETE /applications/{client_id}/grant`. Logged by code on failure, never raised."""
        token = ctx.credentials.get("access_token", "")
        try:
            if not self.app.configured:
                raise spec.PermanentUpstreamError("GitHub is not configured")
            response = await rest.send(
                ctx.http,
                "DELETE",
                f"{self.app.api_url}/applications/{quote(self.app.client_id, safe='')}/grant",
                auth=(self.app.client_id, self.app.client_secret),
                json={"access_token": token},
                headers={"Accept": "application/vnd.github+json"},
            )
            if response.status_code == 404:  # already gone upstream: nothing left to revoke
                return
            rest.raise_for_status(response)
        except spec.ConnectorError as exc:
            log.warning("github revoke failed", extra={"code": type(exc).__name__})


def _event_id(event: Any) -> int:
    value = event.get("id") if isinstance(event, dict) else None
    if not isinstance(value, str) or not value.isdigit():
        raise spec.PermanentUpstreamError("GitHub sent an event without a valid id")
    return int(value)


def _activity(event: Mapping[str, Any]) -> spec.Record:
    kind = event.get("type")
    return spec.Record(
        kind=spec.ACTIVITY,
        external_id=f"event:{event['id']}",
        occurred_at=rest.parse_time(event.get("created_at")),
        title=kind if isinstance(kind, str) else None,
    )


def _repository(repo: Any) -> spec.Record | None:
    if not isinstance(repo, dict) or not isinstance(repo.get("id"), int):
        raise spec.PermanentUpstreamError("GitHub sent a malformed repository")
    if repo.get("private") is not False:
        return None
    name = repo.get("full_name")
    url = repo.get("html_url")
    return spec.Record(
        kind=spec.REPOSITORY,
        external_id=f"repo:{repo['id']}",
        occurred_at=rest.parse_time(repo.get("created_at")),
        counts={
            "stars": rest.count(repo.get("stargazers_count")),
            "forks": rest.count(repo.get("forks_count")),
        },
        title=name if isinstance(name, str) else None,
        url=url if isinstance(url, str) and url.startswith("https://") else None,
    )


class _Api:
    """Authenticated GETs with one token refresh per run and rate-limit bookkeeping."""

    def __init__(self, ctx: spec.SyncContext, app: GitHubApp) -> None:
        self.ctx = ctx
        self.app = app
        self.credentials = dict(ctx.credentials)
        self.refreshed = False
        self.gate = rest.RateGate()
        if not self.credentials.get("access_token"):
            raise spec.NeedsReauthorization("no access token stored")

    def _expired(self) -> bool:
        expires_at = self.credentials.get("expires_at")
        if not expires_at:
            return False
        return rest.parse_time(expires_at) - EXPIRY_LEEWAY <= utcnow()

    async def get(self, url: str) -> httpx.Response:
        if self._expired() and "refresh_token" in self.credentials and not self.refreshed:
            await self.refresh()
        self.gate.before_request()
        response = await self._send(url)
        if response.status_code == 401 and "refresh_token" in self.credentials:
            if self.refreshed:
                raise spec.NeedsReauthorization("GitHub refused a freshly refreshed token")
            await self.refresh()
            response = await self._send(url)
        rest.raise_for_status(response)
        self.gate.observe(response)
        return response

    async def _send(self, url: str) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.credentials['access_token']}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        return await rest.send(self.ctx.http, "GET", url, headers=headers)

    async def pages(self, url: str) -> AsyncIterator[list[Any]]:
        next_url: str | None = url
        while next_url is not None:
            response = await self.get(next_url)
            yield rest.json_body(response, list)
            next_url = rest.next_link(response, "next", self.app.api_url)

    async def refresh(self) -> None:
        """Trade the refresh token for a new pair and persist it before anything uses it."""
        self.refreshed = True
        if not self.app.configured:
            raise spec.NeedsReauthorization("GitHub is not configured on this server")
        response = await rest.send(
            self.ctx.http,
            "POST",
            self.app.token_url,
            data={
                "client_id": self.app.client_id,
                "client_secret": self.app.client_secret,
                "grant_type": "refresh_token",
                "refresh_token": self.credentials["refresh_token"],
            },
            headers={"Accept": "application/json"},
        )
        rest.raise_for_status(response)
        body = rest.json_body(response, dict)
        error = body.get("error")
        if error in ("bad_refresh_token", "invalid_grant", "unauthorized"):
            raise spec.NeedsReauthorization("GitHub refused the refresh token")
        if error:
            raise spec.PermanentUpstreamError(f"GitHub refused the refresh ({error})")
        fresh = token_credentials(body)
        await self.ctx.save_credentials(fresh)
        self.credentials = fresh
        log.info("github token refreshed")


__all__ = ["GitHubApp", "GitHubConnector", "token_credentials"]

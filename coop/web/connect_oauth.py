"""Connecting an OAuth 2 source (Mastodon, GitHub, Bluesky): the start form post and the
callback; and the client metadata document and key set coop publishes as an atproto client.

The start posts (CSRF-checked) answer with a page that sends the browser upstream; the
callback comes back as a top-level GET navigation, so it carries the SameSite=Lax session
cookie the flow is bound to.
Any refused callback is an HTML 400 page, and nothing was sent to the token endpoint.
"""

from __future__ import annotations

import contextlib
import uuid

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from coop.connectors import bluesky_oauth, oauth_apps, oauth_client, service
from coop.errors import ConflictError, CoopError, NotFoundError, OAuthCallbackError
from coop.http.auth import current_actor, require_member
from coop.http.csrf import read_form
from coop.http.flash import redirect_with_flash
from coop.http.runtime import get_runtime
from coop.jobs import sync as sync_jobs
from coop.web.connectors import catalogue_response
from coop.web.templating import render

SESSION_ENDED = (
    "Your session ended before the provider answered, so nothing was connected; log in and "
    "connect again."
)


def _jobs(request: Request) -> sync_jobs.Jobs:
    return sync_jobs.get_jobs(get_runtime(request))


def _optional_uuid(value: object) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError("There is no such connection.", code="connection_not_found") from None


async def start(request: Request) -> Response:
    member = await require_member(request, next_path="/connectors")
    form = await read_form(request)
    actor = await current_actor(request)
    assert actor is not None and actor.session_id is not None
    runtime = get_runtime(request)
    jobs = _jobs(request)
    connector = request.url.path.split("/")[2]
    instance = str(form.get("instance") or "")
    try:
        url = await oauth_client.start(
            vault=jobs.vault,
            registry=jobs.registry,
            guard=jobs.guard,
            settings=runtime.settings,
            member_id=member.id,
            session_id=actor.session_id,
            connector=connector,
            instance=instance,
            connection_id=_optional_uuid(form.get("connection")),
        )
    except CoopError as exc:
        # A server that cannot be reached or is not Mastodon: say so on the catalogue with
        # the name still in its field, as the feed form does.
        return await catalogue_response(request, error=exc, form={"instance": instance})
    return _continue(request, url)


def _continue(request: Request, url: str) -> Response:
    # Not a 303: Chrome and Safari apply the page's CSP `form-action 'self'` to the redirects
    # that follow a form post (w3c/webappsec-csp#8). A page that navigates on its own (the
    # Refresh header, no script) with a visible link keeps the CSP strict for any instance.
    response = render(
        request,
        "connectors_oauth_continue.html",
        {"url": url, "host": httpx.URL(url).host},
    )
    response.headers["Refresh"] = f"0; url={url}"
    return response


async def start_bluesky(request: Request) -> Response:
    """`POST /connectors/bluesky/connect` (field `account`): "Sign in with Bluesky"."""
    member = await require_member(request, next_path="/connectors")
    form = await read_form(request)
    actor = await current_actor(request)
    assert actor is not None and actor.session_id is not None
    jobs = _jobs(request)
    handle = str(form.get("account") or "")
    try:
        url = await bluesky_oauth.start(
            vault=jobs.vault,
            registry=jobs.registry,
            guard=jobs.guard,
            settings=get_runtime(request).settings,
            member_id=member.id,
            session_id=actor.session_id,
            handle=handle,
            connection_id=_optional_uuid(form.get("connection")),
        )
    except CoopError as exc:
        return await catalogue_response(request, error=exc, form={"account": handle})
    return _continue(request, url)


async def callback(request: Request) -> Response:
    actor = await current_actor(request)
    if actor is None or actor.session_id is None:
        raise OAuthCallbackError(SESSION_ENDED)
    jobs = _jobs(request)
    connector = "mastodon" if "key" in request.path_params else request.url.path.split("/")[-1]
    if connector == bluesky_oauth.CONNECTOR:
        authorized = await bluesky_oauth.finish(
            vault=jobs.vault,
            registry=jobs.registry,
            guard=jobs.guard,
            settings=get_runtime(request).settings,
            member_id=actor.member_id,
            session_id=actor.session_id,
            params=dict(request.query_params),
        )
    else:
        authorized = await oauth_client.finish(
            vault=jobs.vault,
            registry=jobs.registry,
            guard=jobs.guard,
            member_id=actor.member_id,
            session_id=actor.session_id,
            connector=connector,
            callback_key=request.path_params.get("key", "github"),
            params=dict(request.query_params),
        )
    connection_id = await _connect(jobs, actor.member_id, authorized)
    title = jobs.registry.get(connector).title
    return redirect_with_flash(
        f"/connections/{connection_id}", f"{title} connected. The first sync has started."
    )


async def _connect(
    jobs: sync_jobs.Jobs, member_id: uuid.UUID, authorized: oauth_client.Authorized
) -> uuid.UUID:
    """A new connection, or new credentials for the one being reconnected."""
    target = authorized.connection_id or await oauth_client.find_reconnect_target(
        vault=jobs.vault, registry=jobs.registry, member_id=member_id, authorized=authorized
    )
    if target is None:
        view = await sync_jobs.connect(
            jobs,
            member_id=member_id,
            connector=authorized.connector,
            config=authorized.config,
            credentials=authorized.credentials,
        )
        return view.id
    await service.reauthorize(
        vault=jobs.vault,
        member_id=member_id,
        connection_id=target,
        credentials=authorized.credentials,
    )
    # A run still finishing under the old tokens cannot commit; the next run uses the new ones.
    with contextlib.suppress(ConflictError):
        await sync_jobs.sync_now(jobs, member_id=member_id, connection_id=target)
    return target


async def bluesky_client_metadata(request: Request) -> Response:
    """coop's atproto OAuth client metadata (its `client_id` is this document's URL)."""
    runtime = get_runtime(request)
    document = bluesky_oauth.client_metadata(runtime.settings, _jobs(request).vault)
    if document is None:
        raise NotFoundError("This cooperative is not an atproto OAuth client.", code="not_found")
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=600"})


async def bluesky_jwks(request: Request) -> Response:
    """The public key of coop's atproto client assertions (the metadata's `jwks_uri`)."""
    document = bluesky_oauth.jwks(_jobs(request).vault)
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=600"})


def routes() -> list[BaseRoute]:
    return [
        Route("/connectors/bluesky/connect", start_bluesky, methods=["POST"]),
        Route(bluesky_oauth.CALLBACK_PATH, callback, methods=["GET"]),
        Route(bluesky_oauth.CLIENT_METADATA_PATH, bluesky_client_metadata, methods=["GET"]),
        Route(bluesky_oauth.JWKS_PATH, bluesky_jwks, methods=["GET"]),
        Route("/connectors/mastodon/connect", start, methods=["POST"]),
        Route("/connectors/github/connect", start, methods=["POST"]),
        Route(f"{oauth_apps.CALLBACK_PATH}/mastodon/{{key}}", callback, methods=["GET"]),
        Route(f"{oauth_apps.CALLBACK_PATH}/github", callback, methods=["GET"]),
    ]

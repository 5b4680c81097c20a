"""Connector pages: the catalogue, connecting a feed, uploading an archive, health, disconnect."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coop.connectors import bluesky_oauth, service
from coop.errors import ConflictError, CoopError, UploadsBusyError
from coop.http.auth import require_member
from coop.http.csrf import read_form
from coop.http.flash import redirect_with_flash
from coop.http.runtime import get_runtime
from coop.jobs import sync as sync_jobs
from coop.web.templating import render

UPLOAD_FIELD = "archive"


def _jobs(request: Request) -> sync_jobs.Jobs:
    return sync_jobs.get_jobs(get_runtime(request))


async def catalogue_response(
    request: Request, *, error: CoopError | None = None, form: dict[str, str] | None = None
) -> Response:
    """The catalogue, with the error of a connect attempt above it and the member's input kept
    in its form (every connect form answers this way: no dead-end pages)."""
    member = await require_member(request)
    jobs = _jobs(request)
    context: dict[str, Any] = {
        "catalogue": service.list_catalogue(registry=jobs.registry),
        "connections": await service.list_connections(
            vault=jobs.vault, registry=jobs.registry, member_id=member.id
        ),
        "error": error,
        "form": form or {},
        # "Sign in with Bluesky" needs coop to be an atproto OAuth client (https or loopback).
        "bluesky_oauth": bluesky_oauth.client_for(get_runtime(request).settings, jobs.vault)
        is not None,
    }
    return render(request, "connectors.html", context, status_code=error.status if error else 200)


async def catalogue_page(request: Request) -> Response:
    return await catalogue_response(request)


async def connect_feed(request: Request) -> Response:
    member = await require_member(request, next_path="/connectors")
    form = await read_form(request)
    url = str(form.get("url") or "")
    try:
        view = await sync_jobs.connect_feed(_jobs(request), member_id=member.id, url=url)
    except CoopError as exc:
        return await catalogue_response(request, error=exc, form={"url": url})
    return redirect_with_flash(f"/connections/{view.id}", "Connected. The first sync has started.")


async def connect_with_password(request: Request) -> Response:
    """`POST /connectors/{name}/login`: an account name and an app password (Bluesky)."""
    member = await require_member(request, next_path="/connectors")
    form = await read_form(request)
    connector = str(request.path_params["name"])
    account = str(form.get("account") or "")
    try:
        view = await sync_jobs.connect_with_password(
            _jobs(request),
            member_id=member.id,
            connector=connector,
            account=account,
            password=str(form.get("app_password") or ""),
        )
    except CoopError as exc:
        return await catalogue_response(request, error=exc, form={"account": account})
    return redirect_with_flash(f"/connections/{view.id}", "Connected. The first sync has started.")


class UploadSlots:
    """At most `size` archive uploads read at once in this process (COOP_MAX_CONCURRENT_UPLOADS):
    each holds its upload in memory plus the archive reader's bound (docs/connectors.md)."""

    def __init__(self, size: int) -> None:
        self.free = size

    @contextmanager
    def take(self) -> Iterator[None]:
        if self.free <= 0:
            raise UploadsBusyError()  # 503 with Retry-After; nothing read, nothing stored
        self.free -= 1
        try:
            yield
        finally:
            self.free += 1


def _slots(request: Request, size: int) -> UploadSlots:
    slots = getattr(request.app.state, "upload_slots", None)
    if slots is None:
        slots = request.app.state.upload_slots = UploadSlots(size)
    assert isinstance(slots, UploadSlots)
    return slots


async def upload_archive(request: Request) -> Response:
    member = await require_member(request, next_path="/connectors")
    settings = get_runtime(request).settings
    form = await read_form(request, max_files=1, max_fields=4, max_part_size=1024 * 1024)
    upload = form.get(UPLOAD_FIELD)
    if not isinstance(upload, UploadFile):
        return await catalogue_response(
            request, error=CoopError("Choose an archive file to upload.", code="invalid_source")
        )
    # The form parser spooled the file to disk; a slot is needed only to read it into memory.
    try:
        with _slots(request, settings.max_concurrent_uploads).take():
            return await _import(request, member.id, upload, settings.max_upload_bytes)
    finally:
        await upload.close()


async def _import(
    request: Request, member_id: uuid.UUID, upload: UploadFile, max_bytes: int
) -> Response:
    data = await upload.read(max_bytes + 1)
    try:
        view = await sync_jobs.import_archive(
            _jobs(request), member_id=member_id, data=data, connector=request.path_params["name"]
        )
    except CoopError as exc:
        return await catalogue_response(request, error=exc)
    return redirect_with_flash(f"/connections/{view.id}", "Your archive was read.")


async def _connection(request: Request, member_id: uuid.UUID) -> service.ConnectionView:
    jobs = _jobs(request)
    return await service.get_connection(
        vault=jobs.vault,
        registry=jobs.registry,
        member_id=member_id,
        connection_id=request.path_params["connection_id"],
    )


async def connection_page(request: Request) -> Response:
    member = await require_member(request)
    connection = await _connection(request, member.id)
    latest = await service.list_records(
        vault=_jobs(request).vault, member_id=member.id, connection_id=connection.id, latest=5
    )
    context = {"connection": connection, "latest": latest}
    return render(request, "connectors_connection.html", context)


async def sync_now(request: Request) -> Response:
    member = await require_member(request, next_path="/connectors")
    await read_form(request)
    connection_id: uuid.UUID = request.path_params["connection_id"]
    try:
        await sync_jobs.sync_now(_jobs(request), member_id=member.id, connection_id=connection_id)
    except ConflictError as exc:
        return redirect_with_flash(f"/connections/{connection_id}", exc.message, "error")
    return redirect_with_flash(f"/connections/{connection_id}", "Sync started.")


async def disconnect_page(request: Request) -> Response:
    member = await require_member(request)
    connection = await _connection(request, member.id)
    connector = _jobs(request).registry.find(connection.connector)
    revocable = callable(getattr(connector, "revoke", None))
    context = {"connection": connection, "revocable": revocable}
    return render(request, "connectors_disconnect.html", context)


async def disconnect(request: Request) -> Response:
    member = await require_member(request, next_path="/connectors")
    await read_form(request)
    deleted = await sync_jobs.disconnect(
        _jobs(request), member_id=member.id, connection_id=request.path_params["connection_id"]
    )
    plural = "" if deleted == 1 else "s"
    return redirect_with_flash(
        "/connectors", f"Disconnected. {deleted} record{plural} from this source were deleted."
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/connectors", catalogue_page, methods=["GET"]),
        Route("/connectors/feed/connect", connect_feed, methods=["POST"]),
        Route("/connectors/{name:str}/upload", upload_archive, methods=["POST"]),
        Route("/connectors/{name:str}/login", connect_with_password, methods=["POST"]),
        Route("/connections/{connection_id:uuid}", connection_page, methods=["GET"]),
        Route("/connections/{connection_id:uuid}/sync", sync_now, methods=["POST"]),
        Route("/connections/{connection_id:uuid}/disconnect", disconnect_page, methods=["GET"]),
        Route("/connections/{connection_id:uuid}/disconnect", disconnect, methods=["POST"]),
    ]

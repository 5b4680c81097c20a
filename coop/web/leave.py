"""Leaving with everything: "Export my data" (a streamed ZIP) and "Delete my account"
(one confirmation, step-up, then the receipt)."""

from __future__ import annotations

import json
import uuid

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from coop.consent import service as consent
from coop.errors import NotFoundError
from coop.http.auth import clear_session_cookie, current_member, forget_session, require_member
from coop.http.bearer import bearer_token
from coop.http.csrf import read_form
from coop.http.flash import redirect_with_flash
from coop.http.runtime import get_runtime
from coop.http.stepup import step_up
from coop.jobs.sync import get_jobs
from coop.portability import erase, export, links, preview, receipt
from coop.types import utcnow
from coop.web.templating import render


def _zip_response(stream: object) -> Response:
    headers = {
        "Content-Disposition": f'attachment; filename="{export.filename(utcnow().date())}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(stream, media_type="application/zip", headers=headers)  # type: ignore[arg-type]


async def export_page(request: Request) -> Response:
    member = await require_member(request)
    summary = await export.summarize(member_id=member.id)
    return render(request, "leave_export.html", {"summary": summary})


@step_up("/account/export")
async def download_export(request: Request) -> Response:
    member = await require_member(request)
    await read_form(request)
    runtime = get_runtime(request)
    stream = await export.stream_export(
        vault=runtime.vault, member_id=member.id, issuer=runtime.settings.issuer
    )
    return _zip_response(stream)


async def _bearer_member(request: Request) -> uuid.UUID | None:
    """The member behind a personal API token (apps never download a whole export)."""
    token, _ = bearer_token(request.scope)
    if token is None:
        return None
    principal = await consent.resolve_bearer(token)
    if principal is None or not principal.is_personal:
        return None
    return principal.member_id


async def download_by_link(request: Request) -> Response:
    """The single-use export link that `request_export` (GraphQL) hands out."""
    member = await current_member(request)
    member_id = member.id if member else await _bearer_member(request)
    runtime = get_runtime(request)
    owner = await links.redeem_export_link(
        vault=runtime.vault, token=request.query_params.get("link", ""), member_id=member_id
    )
    stream = await export.stream_export(
        vault=runtime.vault, member_id=owner, issuer=runtime.settings.issuer
    )
    return _zip_response(stream)


async def delete_page(request: Request) -> Response:
    member = await require_member(request)
    runtime = get_runtime(request)
    what = await preview.preview_erasure(member_id=member.id, registry=get_jobs(runtime).registry)
    return render(request, "leave_delete.html", {"preview": what, "counted": receipt.counted})


@step_up("/account/delete")
async def delete_account(request: Request) -> Response:
    member = await require_member(request)
    await read_form(request)
    runtime = get_runtime(request)
    result = await erase.erase_member(
        vault=runtime.vault,
        settings=runtime.settings,
        member_id=member.id,
        registry=get_jobs(runtime).registry,
    )
    forget_session(request)
    if result.receipt_token is None:  # a concurrent submit already erased: same outcome
        response = redirect_with_flash("/login", "Your account was deleted.")
    else:
        response = redirect_with_flash(
            f"/account/deleted?receipt={result.receipt_token}", "Your account was deleted."
        )
    clear_session_cookie(response, settings=runtime.settings)
    return response


def _receipt_token(request: Request) -> str:
    token = request.query_params.get("receipt", "")
    if not token:
        raise NotFoundError()
    return token


async def receipt_page(request: Request) -> Response:
    token = _receipt_token(request)
    found = await receipt.receipt_for_token(vault=get_runtime(request).vault, token=token)
    context = {"receipt": found, "token": token, "counted": receipt.counted}
    return render(request, "leave_receipt.html", context)


async def receipt_download(request: Request) -> Response:
    token = _receipt_token(request)
    found = await receipt.receipt_for_token(
        vault=get_runtime(request).vault, token=token, download=True
    )
    body = json.dumps(found.as_json(), indent=2) + "\n"
    name = f"coop-deletion-receipt-{found.requested_at.date().isoformat()}.json"
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/account/export", export_page, methods=["GET"]),
        Route("/account/export", download_export, methods=["POST"]),
        Route(links.DOWNLOAD_PATH, download_by_link, methods=["GET"]),
        Route("/account/delete", delete_page, methods=["GET"]),
        Route("/account/delete", delete_account, methods=["POST"]),
        Route("/account/deleted", receipt_page, methods=["GET"]),
        Route("/account/deleted/receipt.json", receipt_download, methods=["GET"]),
    ]

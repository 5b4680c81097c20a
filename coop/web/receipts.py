"""Consent receipts on the web: a member downloads the signed receipt of any of their grants,
and anyone fetches the keys that verify receipts (/.well-known/coop-receipt-keys)."""

from __future__ import annotations

import json
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from coop.errors import NotFoundError
from coop.http.auth import require_member
from coop.http.runtime import get_runtime
from coop.portability import consent_receipts


def _grant_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(str(request.path_params["grant_id"]))
    except ValueError:
        raise NotFoundError() from None


async def download_receipt(request: Request) -> Response:
    member = await require_member(request)
    grant_id = _grant_id(request)
    runtime = get_runtime(request)
    document = await consent_receipts.signed_receipt(
        vault=runtime.vault, member_id=member.id, grant_id=grant_id, issuer=runtime.settings.issuer
    )
    name = consent_receipts.receipt_filename(grant_id)
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def receipt_keys(request: Request) -> Response:
    body = await consent_receipts.key_set(get_runtime(request).vault)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})


def routes() -> list[BaseRoute]:
    return [
        Route("/apps/grants/{grant_id}/receipt", download_receipt, methods=["GET"]),
        Route(consent_receipts.KEYS_PATH, receipt_keys, methods=["GET"]),
    ]

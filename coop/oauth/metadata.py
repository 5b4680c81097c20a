"""RFC 8414 authorization server metadata, built from Settings.issuer (never from Host)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from coop.consent.scopes import PROFILE, known_scorer_names
from coop.http.runtime import get_runtime

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def scopes_supported(known_scorers: Collection[str] | None) -> list[str]:
    scopes = [PROFILE]
    for name in sorted(known_scorers or ()):
        # `score:<name>:atleast:<N>` is open-ended (any N in range): not listed.
        scopes += [f"score:{name}", f"score:{name}:band", f"score:{name}:history"]
    return scopes


def build_metadata(issuer: str, known_scorers: Collection[str] | None) -> dict[str, Any]:
    metadata = AuthorizationServerMetadata(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS[:2],
            "scopes_supported": scopes_supported(known_scorers),
            "authorization_response_iss_parameter_supported": True,
        }
    )
    metadata.validate()
    return dict(metadata)


async def metadata_endpoint(request: Request) -> Response:
    runtime = get_runtime(request)
    known = await known_scorer_names(runtime.known_scorers)
    body = build_metadata(runtime.settings.issuer, known)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})

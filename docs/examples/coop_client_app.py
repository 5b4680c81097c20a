"""An example third-party app for coop: Starlette + authlib's stock OAuth client.

It knows nothing about coop except its issuer URL: every OAuth endpoint comes from the discovery
document (RFC 8414), and the API lives at `<issuer>/graphql`. It asks a member for access
(authorization code + PKCE S256), checks the `iss` of the authorization response (RFC 9207),
refreshes its token (coop rotates refresh tokens: always keep the newest), reads the member's
Reach score through the GraphQL API, and asks coop whether its token is still valid.

Run it (after `coop app create --name Example --redirect-uri http://127.0.0.1:8765/callback`):

    COOP_ISSUER=http://127.0.0.1:8000 CLIENT_ID=... CLIENT_SECRET=... \\
        python docs/examples/coop_client_app.py

then open http://127.0.0.1:8765/login. This demo keeps one member's tokens in memory; a real
app stores them server-side per user, encrypted, and never logs them.
"""

from __future__ import annotations

import os
import secrets
import warnings
from typing import Any

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

with warnings.catch_warnings():
    # authlib 1.9 warns that it prefers the `httpx2` package; plain httpx works the same.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.starlette_client import OAuth, OAuthError


def build_app(
    *,
    issuer: str,
    client_id: str,
    client_secret: str,
    base_url: str,
    scope: str = "profile",
    session_secret: str | None = None,
) -> Starlette:
    oauth = OAuth()
    oauth.register(
        "coop",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/oauth-authorization-server",
        client_kwargs={"scope": scope, "code_challenge_method": "S256"},
    )
    coop = oauth.create_client("coop")
    tokens: dict[str, Any] = {}

    async def home(request: Request) -> Response:
        return JSONResponse({"connected": "access_token" in tokens})

    async def login(request: Request) -> Response:
        response: Response = await coop.authorize_redirect(request, f"{base_url}/callback")
        return response

    async def callback(request: Request) -> Response:
        metadata = await coop.load_server_metadata()
        # RFC 9207: the response must come from the server we sent the member to.
        if request.query_params.get("iss") != metadata["issuer"]:
            return JSONResponse({"error": "issuer_mismatch"}, status_code=400)
        try:
            token = await coop.authorize_access_token(request)
        except OAuthError as exc:
            return JSONResponse({"error": exc.error}, status_code=400)
        tokens.clear()
        tokens.update(token)
        return JSONResponse({"scope": token["scope"], "expires_in": token["expires_in"]})

    async def refresh(request: Request) -> Response:
        try:
            # Ask for the scope the member actually granted (the token response says which):
            # authlib would otherwise re-send every scope it first asked for, and coop refuses
            # a refresh that asks for more than the grant (`invalid_scope`, RFC 6749 §6).
            token = await coop.fetch_access_token(
                grant_type="refresh_token",
                refresh_token=tokens.get("refresh_token", ""),
                scope=tokens.get("scope", ""),
            )
        except OAuthError as exc:
            return JSONResponse({"error": exc.error}, status_code=400)
        tokens.clear()
        tokens.update(token)  # the old refresh token is now spent: keep only the new one
        return JSONResponse({"scope": token["scope"], "expires_in": token["expires_in"]})

    async def score(request: Request) -> Response:
        """Read the member's Reach score and its explanation (needs the `score:reach` scope).

        coop answers 401 once the member revoked the grant, paused sharing or left; a scorer
        the member did not grant looks exactly like one with no score: `null` with an error."""
        query = '{ viewer { score(scorer: "reach") { value computedAt explanation { reasons } } } }'
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{issuer}/graphql",
                json={"query": query},
                headers={"Authorization": f"Bearer {tokens.get('access_token', '')}"},
            )
        if answer.status_code == 401:
            return JSONResponse({"error": "refused"}, status_code=401)
        answer.raise_for_status()
        return JSONResponse(answer.json())

    async def check(request: Request) -> Response:
        """Ask coop whether our access token still works (RFC 7662 introspection)."""
        metadata = await coop.load_server_metadata()
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                metadata["introspection_endpoint"],
                data={"token": tokens.get("access_token", "")},
                auth=(client_id, client_secret),
            )
        answer.raise_for_status()
        info = answer.json()
        return JSONResponse({"active": info["active"], "scope": info.get("scope")})

    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", login),
            Route("/callback", callback),
            Route("/refresh", refresh, methods=["POST"]),
            Route("/score", score),
            Route("/check", check),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=session_secret or secrets.token_urlsafe(32),
                same_site="lax",
            )
        ],
    )


if __name__ == "__main__":  # pragma: no cover
    import uvicorn

    port = int(os.environ.get("PORT", "8765"))
    app = build_app(
        issuer=os.environ["COOP_ISSUER"],
        client_id=os.environ["CLIENT_ID"],
        client_secret=os.environ["CLIENT_SECRET"],
        base_url=f"http://127.0.0.1:{port}",
        scope=os.environ.get("SCOPE", "profile"),
    )
    uvicorn.run(app, host="127.0.0.1", port=port)

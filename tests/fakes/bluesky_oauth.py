"""The fake Bluesky's OAuth side (atproto.com/specs/oauth), on real loopback HTTP servers.

The PDS serves `/.well-known/oauth-protected-resource` naming an authorization server (the
"entryway"), which runs on a second server so that, as on Bluesky, the two hand out their own
DPoP nonces. The entryway speaks:

- `GET /.well-known/oauth-authorization-server` (RFC 8414)
- `POST /oauth/par` (RFC 9126), `GET /oauth/authorize` (auto-decided by `decision`: "allow"
  redirects with a code, "deny" with `error=access_denied`; both carry `iss`),
  `POST /oauth/token` (authorization_code with PKCE S256, refresh_token with rotation),
  `POST /oauth/revoke` (RFC 7009)

Every entryway POST and every XRPC call made with `Authorization: DPoP …` checks a DPoP proof
with joserfc (signature by the header's key, `htm`, `htu`, `iat`, unused `jti`, the server's
current nonce, `ath` on the PDS, the key the token is bound to) and answers `use_dpop_nonce` as
RFC 9449 §8/§9 say. Client authentication is checked too: a `private_key_jwt` assertion
against the key set the test hands over (`client_jwks`), or the loopback `http://localhost`
client with no secret.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.upstream import RequestLog, record

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def s256(value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).decode().rstrip("=")


@dataclass
class Grant:
    """What one token pair (or code) stands for."""

    did: str
    jkt: str
    client_id: str
    scope: str
    refresh: str = ""
    expired: bool = False


@dataclass
class FakeAuth:
    """The OAuth state of the fake. Tests set the knobs; the server threads read them."""

    url: str = ""  # the entryway's base URL
    pds_url: str = ""
    enabled: bool = True  # False: the PDS serves no protected-resource metadata (404)
    issuer: str | None = None  # what the metadata claims as `issuer` (default: `url`)
    authorization_server: str | None = None  # what the PDS names (default: `url`)
    decision: str = "allow"
    sub: str | None = None  # the token response's `sub` (default: the account's DID)
    did: str = ""
    client_jwks: Mapping[str, Any] | None = None
    client_metadata: Mapping[str, Any] | None = None
    as_nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    pds_nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    log: RequestLog = field(default_factory=RequestLog)
    pushed: dict[str, dict[str, str]] = field(default_factory=dict)
    codes: dict[str, tuple[dict[str, str], str]] = field(default_factory=dict)
    tokens: dict[str, Grant] = field(default_factory=dict)  # access token -> grant
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # why requests were refused, in order
    _jtis: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rotate_nonces(self) -> None:
        self.as_nonce, self.pds_nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)

    def expire_access_tokens(self) -> None:
        for grant in self.tokens.values():
            grant.expired = True

    def live_refresh_tokens(self) -> set[str]:
        return set(self.refresh_tokens)

    def fresh_jti(self, jti: Any) -> bool:
        with self._lock:
            if not isinstance(jti, str) or jti in self._jtis:
                return False
            self._jtis.add(jti)
            return True

    def issue(self, grant: Grant) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        grant.refresh = refresh
        self.tokens[access] = grant
        self.refresh_tokens[refresh] = grant
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "DPoP",
            "scope": grant.scope,
            "sub": self.sub or grant.did,
            "expires_in": 3600,
        }

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer or self.url,
            "authorization_endpoint": f"{self.url}/oauth/authorize",
            "token_endpoint": f"{self.url}/oauth/token",
            "revocation_endpoint": f"{self.url}/oauth/revoke",
            "pushed_authorization_request_endpoint": f"{self.url}/oauth/par",
            "require_pushed_authorization_requests": True,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["atproto", "transition:generic", "transition:chat.bsky"],
            "authorization_response_iss_parameter_supported": True,
            "dpop_signing_alg_values_supported": ["ES256"],
            "client_id_metadata_document_supported": True,
        }


class Refused(Exception):
    def __init__(self, response: Response, why: str) -> None:
        super().__init__(why)
        self.response = response


def _oauth_error(status: int, error: str, **headers: str) -> Response:
    return JSONResponse({"error": error, "error_description": error}, status, headers=headers)


def check_proof(
    auth: FakeAuth, request: Request, *, nonce: str, resource: bool, token: str | None = None
) -> str:
    """The thumbprint of the key that signed the request's valid DPoP proof, or Refused."""

    def refuse(why: str, error: str = "invalid_dpop_proof") -> Refused:
        auth.refusals.append(why)
        if resource:
            challenge = f'DPoP error="{error}", error_description="{why}"'
            response = _oauth_error(
                401, error, **{"WWW-Authenticate": challenge, "DPoP-Nonce": nonce}
            )
        else:
            response = _oauth_error(400, error, **{"DPoP-Nonce": nonce})
        return Refused(response, why)

    proof = request.headers.get("dpop", "")
    try:
        header = jws.extract_compact(proof.encode()).headers()
        key = ECKey.import_key(header["jwk"])
        claims = jwt.decode(proof, key, algorithms=["ES256"]).claims
    except (JoseError, KeyError, TypeError, ValueError):
        raise refuse("bad proof") from None
    if header.get("typ") != "dpop+jwt" or "d" in header["jwk"]:
        raise refuse("bad proof header")
    url = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
    if claims.get("htm") != request.method or claims.get("htu") != url:
        raise refuse("wrong htm/htu")
    if abs(int(claims.get("iat", 0)) - time.time()) > 60 or not auth.fresh_jti(claims.get("jti")):
        raise refuse("stale or replayed proof")
    if claims.get("nonce") != nonce:
        raise refuse("nonce", "use_dpop_nonce")
    if resource and claims.get("ath") != s256(token or ""):
        raise refuse("wrong ath")
    return str(key.thumbprint())


def check_client(auth: FakeAuth, form: Mapping[str, str]) -> str:
    """The authenticated client_id, or Refused(invalid_client)."""
    client_id = form.get("client_id", "")

    def refuse(why: str) -> Refused:
        auth.refusals.append(why)
        return Refused(_oauth_error(401, "invalid_client"), why)

    if client_id.startswith("http://localhost?"):
        if form.get("client_assertion"):
            raise refuse("a loopback client has no key")
        return client_id
    if auth.client_jwks is None or form.get("client_assertion_type") != ASSERTION_TYPE:
        raise refuse("no client assertion")
    try:
        keys = KeySet.import_key_set(dict(auth.client_jwks))  # type: ignore[arg-type]
        claims = jwt.decode(form.get("client_assertion", ""), keys, algorithms=["ES256"]).claims
    except (JoseError, ValueError, TypeError):
        raise refuse("bad client assertion") from None
    fresh = abs(int(claims.get("iat", 0)) - time.time()) < 60 and auth.fresh_jti(claims.get("jti"))
    issuer = auth.issuer or auth.url
    if not (claims.get("iss") == claims.get("sub") == client_id and claims.get("aud") == issuer):
        raise refuse("assertion for another client or server")
    if not fresh:
        raise refuse("stale or replayed assertion")
    return client_id


def _redirect_uris(auth: FakeAuth, client_id: str) -> list[str]:
    if client_id.startswith("http://localhost?"):
        return parse_qs(urlsplit(client_id).query).get("redirect_uri", [])
    return list((auth.client_metadata or {}).get("redirect_uris", []))


def build_entryway(auth: FakeAuth) -> Starlette:
    async def metadata(request: Request) -> Response:
        await record(request, auth.log)
        return JSONResponse(auth.metadata())

    async def par(request: Request) -> Response:
        form = dict(await record(request, auth.log))
        try:
            jkt = check_proof(auth, request, nonce=auth.as_nonce, resource=False)
            client_id = check_client(auth, form)
        except Refused as refused:
            return refused.response
        if (
            form.get("response_type") != "code"
            or form.get("code_challenge_method") != "S256"
            or not form.get("code_challenge")
            or not form.get("state")
            or "atproto" not in form.get("scope", "").split()
            or form.get("redirect_uri") not in _redirect_uris(auth, client_id)
        ):
            auth.refusals.append("bad authorization request")
            return _oauth_error(400, "invalid_request")
        request_uri = "urn:ietf:params:oauth:request_uri:req-" + secrets.token_urlsafe(16)
        auth.pushed[request_uri] = {**form, "jkt": jkt}
        return JSONResponse(
            {"request_uri": request_uri, "expires_in": 299},
            201,
            headers={"DPoP-Nonce": auth.as_nonce},
        )

    async def authorize(request: Request) -> Response:
        await record(request, auth.log)
        pushed = auth.pushed.pop(request.query_params.get("request_uri", ""), None)
        if pushed is None or pushed["client_id"] != request.query_params.get("client_id"):
            return Response("unknown request", 400)
        answer = {"state": pushed["state"], "iss": auth.issuer or auth.url}
        if auth.decision == "allow":
            code = "cod-" + secrets.token_urlsafe(16)
            auth.codes[code] = (pushed, pushed["jkt"])
            answer["code"] = code
        else:
            answer["error"] = "access_denied"
        return RedirectResponse(f"{pushed['redirect_uri']}?{urlencode(answer)}", 302)

    async def token(request: Request) -> Response:
        form = dict(await record(request, auth.log))
        try:
            jkt = check_proof(auth, request, nonce=auth.as_nonce, resource=False)
            client_id = check_client(auth, form)
        except Refused as refused:
            return refused.response
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            pushed, bound = auth.codes.pop(form.get("code", ""), ({}, ""))
            if (
                not pushed
                or bound != jkt
                or pushed["client_id"] != client_id
                or pushed["redirect_uri"] != form.get("redirect_uri")
                or pushed["code_challenge"] != s256(form.get("code_verifier", ""))
            ):
                auth.refusals.append("bad code")
                return _oauth_error(400, "invalid_grant")
            grant = Grant(auth.did, jkt, client_id, pushed["scope"])
        elif grant_type == "refresh_token":
            old = auth.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if old is None or old.jkt != jkt or old.client_id != client_id:
                auth.refusals.append("bad refresh token")
                return _oauth_error(400, "invalid_grant")
            for access in [a for a, g in auth.tokens.items() if g is old]:
                del auth.tokens[access]
            grant = Grant(old.did, jkt, client_id, old.scope)
        else:
            return _oauth_error(400, "unsupported_grant_type")
        return JSONResponse(auth.issue(grant), headers={"DPoP-Nonce": auth.as_nonce})

    async def revoke(request: Request) -> Response:
        form = dict(await record(request, auth.log))
        try:
            check_proof(auth, request, nonce=auth.as_nonce, resource=False)
            check_client(auth, form)
        except Refused as refused:
            return refused.response
        grant = auth.refresh_tokens.pop(form.get("token", ""), None)
        if grant is not None:
            auth.revoked.append(form["token"])
            for access in [a for a, g in auth.tokens.items() if g is grant]:
                del auth.tokens[access]
        return Response(status_code=200)

    return Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", metadata),
            Route("/oauth/par", par, methods=["POST"]),
            Route("/oauth/authorize", authorize),
            Route("/oauth/token", token, methods=["POST"]),
            Route("/oauth/revoke", revoke, methods=["POST"]),
        ]
    )


def protected_resource(auth: FakeAuth) -> Response:
    if not auth.enabled:
        return Response(status_code=404)
    return JSONResponse(
        {
            "resource": auth.pds_url,
            "authorization_servers": [auth.authorization_server or auth.url],
            "scopes_supported": [],
            "bearer_methods_supported": ["header"],
        }
    )


def check_resource_request(auth: FakeAuth, request: Request) -> Grant | Response:
    """The grant behind a DPoP-authenticated XRPC call, or the 401 that refuses it."""
    token = request.headers.get("authorization", "")[5:]
    try:
        jkt = check_proof(auth, request, nonce=auth.pds_nonce, resource=True, token=token)
    except Refused as refused:
        return refused.response
    grant = auth.tokens.get(token)
    challenge = 'DPoP error="invalid_token", error_description="token expired or unknown"'
    if grant is None or grant.expired or grant.jkt != jkt:
        auth.refusals.append("token")
        return _oauth_error(
            401, "invalid_token", **{"WWW-Authenticate": challenge, "DPoP-Nonce": auth.pds_nonce}
        )
    return grant


__all__ = [
    "FakeAuth",
    "Grant",
    "build_entryway",
    "check_resource_request",
    "protected_resource",
    "s256",
]

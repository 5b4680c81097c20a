"""The AT Protocol OAuth profile, client side (atproto.com/specs/oauth), free of any web framework.

- Discovery: the PDS's protected-resource metadata (RFC 9728) names its authorization server;
  that server's metadata (RFC 8414) must name itself as `issuer` exactly and offer what the
  profile requires (PAR, PKCE S256, DPoP with ES256, the `atproto` scope).
- Every request to the authorization server is a form POST carrying the client's
  authentication (a `private_key_jwt` assertion, or only `client_id` for the loopback
  development client) and a DPoP proof; a `use_dpop_nonce` answer is retried once with the
  nonce the server sent (RFC 9449 §8), on the authorization server and the PDS alike.
- Resource requests send `Authorization: DPoP <token>` and a proof with `ath` (§7.1).
Every request goes through the engine's guarded client, so the SSRF guard judges each URL
that discovery turns up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from coop.connectors import spec
from coop.connectors.builtin import atproto, rest
from coop.vault.jose import EcKey, client_assertion, dpop_proof

SCOPE = "atproto transition:generic"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_METADATA = 64 * 1024


class OAuthUnsupportedError(spec.InvalidSourceError):
    """The member's server does not offer atproto OAuth (or not in a form coop can use)."""

    def __init__(self, message: str, code: str = "bluesky_oauth_unsupported") -> None:
        super().__init__(message, code)


class TokenRefusedError(spec.NeedsReauthorization):
    """The authorization server refused a code or refresh token (`invalid_grant`, ...)."""


@dataclass(frozen=True)
class AuthServer:
    issuer: str
    par_endpoint: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str

    def as_dict(self) -> dict[str, str]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthServer:
        return cls(*(str(data.get(k) or "") for k in cls.__dataclass_fields__))


@dataclass(frozen=True)
class Client:
    """coop's client identity: `key` signs assertions (a confidential web client); None is the
    public loopback client of local development (`http://localhost?...`)."""

    client_id: str
    redirect_uri: str
    key: EcKey | None = field(default=None, repr=False)

    def authentication(self, audience: str) -> dict[str, str]:
        fields = {"client_id": self.client_id}
        if self.key is not None:
            fields["client_assertion_type"] = ASSERTION_TYPE
            fields["client_assertion"] = client_assertion(
                self.key, client_id=self.client_id, audience=audience
            )
        return fields


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    sub: str
    scope: str


def _unsupported(
    message: str = "Your Bluesky server does not offer signing in with Bluesky "
    "here; connect with an app password instead.",
) -> OAuthUnsupportedError:
    return OAuthUnsupportedError(message)


def endpoint(raw: Any) -> str:
    """An endpoint URL from metadata: https (plain http only on loopback), no fragment."""
    try:
        url = httpx.URL(raw) if isinstance(raw, str) and len(raw) < 1024 else None
    except (httpx.InvalidURL, ValueError):
        url = None
    if url is None or not url.host or url.userinfo or url.fragment:
        raise _unsupported("Your Bluesky server's sign-in metadata is not usable.")
    atproto.origin(f"{url.scheme}://{url.netloc.decode('ascii')}")  # the scheme/host rules
    return str(url)


async def _metadata(http: spec.HttpClient, url: str) -> Mapping[str, Any]:
    response = await rest.send(
        http, "GET", url, headers={"Accept": "application/json"}, max_bytes=MAX_METADATA
    )
    if response.status_code in (404, 410):
        raise _unsupported()
    rest.raise_for_status(response)
    try:
        return rest.json_body(response, dict)  # type: ignore[no-any-return]
    except spec.PermanentUpstreamError:
        raise _unsupported() from None


async def authorization_server_of(http: spec.HttpClient, pds: str) -> str:
    """The issuer the PDS names (RFC 9728 §3); its `resource` must be the PDS itself."""
    body = await _metadata(http, f"{pds}/.well-known/oauth-protected-resource")
    servers = body.get("authorization_servers")
    if not isinstance(servers, list) or not servers:
        raise _unsupported()
    try:
        resource, issuer = atproto.origin(body.get("resource")), atproto.origin(servers[0])
    except spec.InvalidSourceError:  # not a bare https origin
        raise _unsupported() from None
    if resource != pds:
        raise _unsupported()
    return issuer


def _offers(body: Mapping[str, Any], key: str, value: str) -> bool:
    offered = body.get(key)
    return isinstance(offered, list) and value in offered


async def server_metadata(http: spec.HttpClient, issuer: str) -> AuthServer:
    """RFC 8414 metadata of `issuer`, which must name itself exactly (RFC 8414 §3.3)."""
    body = await _metadata(http, f"{issuer}/.well-known/oauth-authorization-server")
    if body.get("issuer") != issuer:
        raise OAuthUnsupportedError(
            "Your Bluesky server's sign-in service names another server as itself; coop did "
            "not sign in there.",
            code="oauth_issuer_mismatch",
        )
    required = (
        ("response_types_supported", "code"),
        ("code_challenge_methods_supported", "S256"),
        ("dpop_signing_alg_values_supported", "ES256"),
        ("scopes_supported", "atproto"),
    )
    if not all(_offers(body, key, value) for key, value in required):
        raise _unsupported()
    if body.get("authorization_response_iss_parameter_supported") is not True:
        raise _unsupported()
    return AuthServer(
        issuer=issuer,
        par_endpoint=endpoint(body.get("pushed_authorization_request_endpoint")),
        authorization_endpoint=endpoint(body.get("authorization_endpoint")),
        token_endpoint=endpoint(body.get("token_endpoint")),
        revocation_endpoint=(
            endpoint(body["revocation_endpoint"]) if body.get("revocation_endpoint") else ""
        ),
    )


async def discover(http: spec.HttpClient, pds: str) -> AuthServer:
    return await server_metadata(http, await authorization_server_of(http, pds))


def _origin_of(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


def _wants_nonce(response: httpx.Response) -> bool:
    """`use_dpop_nonce`, as the authorization server (400, JSON error) or a resource server
    (401, `WWW-Authenticate: DPoP error="use_dpop_nonce"`) says it (RFC 9449 §8, §9)."""
    if response.status_code == 401:
        return "use_dpop_nonce" in response.headers.get("www-authenticate", "")
    return response.status_code == 400 and _error(response) == "use_dpop_nonce"


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else ""


@dataclass
class DPoP:
    """A session's DPoP key and the latest nonce each server gave it (by origin)."""

    key: EcKey
    nonces: dict[str, str] = field(default_factory=dict)

    async def send(
        self,
        http: spec.HttpClient,
        method: str,
        url: str,
        *,
        token: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request with a fresh proof, retried once when the server asks for a nonce."""
        origin, target = _origin_of(url), str(httpx.URL(url).copy_with(query=None))
        headers = dict(kwargs.pop("headers", None) or {})
        response: httpx.Response | None = None
        for _ in range(2):
            ath = create_s256_code_challenge(token) if token else None
            headers["DPoP"] = dpop_proof(
                self.key, method=method, url=target, nonce=self.nonces.get(origin), ath=ath
            )
            if token:
                headers["Authorization"] = f"DPoP {token}"
            response = await rest.send(http, method, url, headers=headers, **kwargs)
            nonce = response.headers.get("dpop-nonce")
            if nonce and len(nonce) < 512:
                self.nonces[origin] = nonce
            if not (nonce and _wants_nonce(response)):
                break
        assert response is not None
        return response

    async def post_form(
        self, http: spec.HttpClient, url: str, form: Mapping[str, str]
    ) -> httpx.Response:
        return await self.send(
            http,
            "POST",
            url,
            content=urlencode(dict(form)).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )


async def push_authorization(
    http: spec.HttpClient,
    server: AuthServer,
    client: Client,
    dpop: DPoP,
    *,
    state: str,
    verifier: str,
    login_hint: str,
) -> str:
    """PAR (RFC 9126): the authorization parameters go server to server; the browser carries
    only the `request_uri` back."""
    form = {
        "response_type": "code",
        "redirect_uri": client.redirect_uri,
        "scope": SCOPE,
        "state": state,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        "login_hint": login_hint,
        **client.authentication(server.issuer),
    }
    response = await dpop.post_form(http, server.par_endpoint, form)
    if response.status_code not in (200, 201):
        if response.status_code >= 500 or response.status_code == 429:
            rest.raise_for_status(response)
        raise _unsupported("Your Bluesky server refused coop's sign-in request.")
    request_uri = rest.json_body(response, dict).get("request_uri")
    if not isinstance(request_uri, str) or not request_uri:
        raise _unsupported("Your Bluesky server refused coop's sign-in request.")
    return request_uri


def authorization_url(server: AuthServer, client: Client, request_uri: str) -> str:
    query = urlencode({"client_id": client.client_id, "request_uri": request_uri})
    separator = "&" if "?" in server.authorization_endpoint else "?"
    return f"{server.authorization_endpoint}{separator}{query}"


async def _token_request(
    http: spec.HttpClient, server: AuthServer, client: Client, dpop: DPoP, form: dict[str, str]
) -> Tokens:
    response = await dpop.post_form(
        http, server.token_endpoint, {**form, **client.authentication(server.issuer)}
    )
    if response.status_code in (400, 401):
        raise TokenRefusedError(f"the authorization server refused: {_error(response)[:64]}")
    rest.raise_for_status(response)
    body = rest.json_body(response, dict)
    access, refresh, sub = (body.get(k) for k in ("access_token", "refresh_token", "sub"))
    scope = body.get("scope")
    if not all(isinstance(v, str) and v for v in (access, refresh, sub, scope)):
        raise spec.PermanentUpstreamError("the authorization server sent no usable tokens")
    if str(body.get("token_type", "")).lower() != "dpop" or "atproto" not in str(scope).split():
        raise spec.PermanentUpstreamError("the authorization server sent unbound tokens")
    return Tokens(str(access), str(refresh), str(sub), str(scope))


async def redeem(
    http: spec.HttpClient,
    server: AuthServer,
    client: Client,
    dpop: DPoP,
    *,
    code: str,
    verifier: str,
) -> Tokens:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
    }
    return await _token_request(http, server, client, dpop, form)


async def refresh(
    http: spec.HttpClient, server: AuthServer, client: Client, dpop: DPoP, refresh_token: str
) -> Tokens:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await _token_request(http, server, client, dpop, form)


async def revoke(
    http: spec.HttpClient, server: AuthServer, client: Client, dpop: DPoP, token: str
) -> None:
    """RFC 7009 revocation; a server without a revocation endpoint lets the token expire."""
    if not server.revocation_endpoint:
        return
    form = {"token": token, "token_type_hint": "refresh_token"}
    response = await dpop.post_form(
        http, server.revocation_endpoint, {**form, **client.authentication(server.issuer)}
    )
    if response.status_code != 400:  # RFC 7009 §2.2: an unknown token is already revoked
        rest.raise_for_status(response)


__all__ = [
    "SCOPE",
    "AuthServer",
    "Client",
    "DPoP",
    "OAuthUnsupportedError",
    "TokenRefusedError",
    "Tokens",
    "authorization_url",
    "discover",
    "push_authorization",
    "redeem",
    "refresh",
    "revoke",
]

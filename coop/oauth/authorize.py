"""The authorization endpoint (RFC 6749 §4.1.1): validate the request, show the consent page,
turn the member's decision into a code or an `access_denied` redirect.

Until the client and its redirect URI are known to be registered, errors are an HTML page
with no Location (OA-01). After that, errors go back to the client with `state` and `iss`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from tortoise.transactions import in_transaction

from coop.apps import service as apps
from coop.apps.models import App
from coop.apps.redirects import Origin, parse_redirect_uri
from coop.consent import grants, tokens
from coop.consent.disclosure import chosen_scopes, parse_score_scope
from coop.consent.scopes import (
    known_scorer_names,
    parse_scopes,
    ranges_of,
    scorer_bands,
)
from coop.errors import CoopError, InvalidRedirectUriError
from coop.http.auth import require_member
from coop.http.csrf import read_form
from coop.http.middleware import CSP
from coop.http.runtime import get_runtime
from coop.http.stepup import step_up
from coop.jobs.scoring import flow_for
from coop.oauth.responses import redirect_to_client
from coop.scoring.validate import ScorerMeta
from coop.web.scopes import consent_rows
from coop.web.templating import render

CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}\Z")
PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
DEFAULT_LIFETIME = "30d"
LEVEL_FIELD = "level_"  # + scorer name: the radio group of one score's disclosure level


class NoTrustedRedirect(Exception):
    """The client or redirect URI cannot be trusted: answer with an HTML page, never redirect."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientRedirectError(Exception):
    """An error to send back to the (verified) redirect URI."""

    def __init__(self, code: str, description: str, target: AuthorizationRequest) -> None:
        super().__init__(code)
        self.code = code
        self.description = description
        self.target = target


@dataclass
class AuthorizationRequest:
    app: App
    redirect_uri: str
    origin: Origin
    redirect_uri_given: bool
    state: str | None
    params: dict[str, str]
    scopes: list[str] | None = None
    code_challenge: str = ""
    bands: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # scorer -> edges


def _single(params: ImmutableMultiDict[str, str]) -> dict[str, str]:
    """RFC 6749 §3.1: a parameter sent more than once makes the request invalid."""
    values: dict[str, str] = {}
    for name in PARAMS:
        found = params.getlist(name)
        if len(found) > 1:
            values["__duplicate__"] = name
        elif found:
            values[name] = found[0]
    return values


async def validate(raw: ImmutableMultiDict[str, str], request: Request) -> AuthorizationRequest:
    """The checked request, or NoTrustedRedirect / ClientRedirectError."""
    params = _single(raw)
    app = await apps.get_app(client_id=params.get("client_id", ""))
    if app is None:
        raise NoTrustedRedirect("This app is not registered with coop.")
    given = params.get("redirect_uri")
    redirect_uri = apps.match_redirect_uri(app, given)
    if redirect_uri is None or params.get("__duplicate__") in ("client_id", "redirect_uri"):
        raise NoTrustedRedirect("The redirect address does not match the app's registration.")
    try:
        origin = parse_redirect_uri(redirect_uri)
    except InvalidRedirectUriError:
        # Registered before the rules were strict: refuse cleanly, never redirect there.
        raise NoTrustedRedirect(
            "This app's redirect address is not valid; its developer must register it again."
        ) from None
    state = params.get("state")
    target = AuthorizationRequest(app, redirect_uri, origin, bool(given), state, params)
    if "__duplicate__" in params:
        raise ClientRedirectError("invalid_request", "A parameter was sent twice.", target)
    if params.get("response_type") != "code":
        code = "invalid_request" if "response_type" not in params else "unsupported_response_type"
        raise ClientRedirectError(code, "Only response_type=code is supported.", target)
    challenge = params.get("code_challenge", "")
    if params.get("code_challenge_method") != "S256" or not CHALLENGE.match(challenge):
        raise ClientRedirectError(
            "invalid_request", "PKCE is required: code_challenge with method S256.", target
        )
    runtime = get_runtime(request)
    known = await known_scorer_names(runtime.known_scorers)
    target.bands = await scorer_bands(runtime.scorer_bands)
    try:
        target.scopes = parse_scopes(
            params.get("scope"), known_scorers=known, ranges=ranges_of(target.bands)
        )
    except CoopError as exc:
        raise ClientRedirectError("invalid_scope", exc.message, target) from None
    target.code_challenge = challenge
    return target


def _error_page(request: Request, message: str) -> Response:
    return render(
        request,
        "error.html",
        {"status": 400, "code": "invalid_request", "message": message, "app_fault": True},
        status_code=400,
    )


def _redirect_error(request: Request, exc: ClientRedirectError, *, after_post: bool) -> Response:
    return redirect_to_client(
        exc.target.redirect_uri,
        [("error", exc.code), ("error_description", exc.description)],
        issuer=get_runtime(request).settings.issuer,
        state=exc.target.state,
        after_post=after_post,
    )


def consent_csp(origin: Origin) -> str:
    """The page's CSP, letting its form's redirect reach the app (Chrome applies form-action
    to redirects after a submission). Built from the checked origin only, never from the
    client's string."""
    return CSP.replace("form-action 'self'", f"form-action 'self' {origin.csp_source()}")


async def authorize_page(request: Request) -> Response:
    """GET: the consent page for a logged-in member (others log in first and come back)."""
    try:
        req = await validate(request.query_params, request)
    except NoTrustedRedirect as exc:
        return _error_page(request, exc.message)
    except ClientRedirectError as exc:
        return _redirect_error(request, exc, after_post=False)
    member = await require_member(request)
    return await _consent_page(request, req, member_id=member.id)


async def _consent_page(
    request: Request, req: AuthorizationRequest, *, member_id: uuid.UUID, changed: bool = False
) -> Response:
    """The consent page: each scope in plain words next to the purpose the app gave for it,
    how long the app keeps what it reads, and its policy link. The form carries the terms
    version shown, so the grant records exactly the words the member saw."""
    assert req.scopes is not None
    terms = await apps.current_terms(req.app)
    response = render(
        request,
        "oauth_consent.html",
        {
            "app": req.app,
            "redirect_host": req.origin.netloc,
            "scopes": consent_rows(
                req.scopes, terms, req.bands, await _offered(request, req.scopes)
            ),
            "terms": terms,
            "lifetimes": list(grants.LIFETIME_LABELS.items()),
            "default_lifetime": DEFAULT_LIFETIME,
            "params": {k: v for k, v in req.params.items() if k in PARAMS},
            "paused": await grants.is_sharing_paused(member_id=member_id),
            "terms_changed": changed,
        },
        status_code=409 if changed else 200,
    )
    response.headers["Content-Security-Policy"] = consent_csp(req.origin)
    return response


async def _offered(request: Request, scopes: list[str]) -> dict[str, ScorerMeta] | None:
    """The scorers members may use (with governance on: approved), by name, to say what each
    requested score's scorer reads; None when no score is asked for or the scorers cannot be
    listed right now."""
    if not any(parse_score_scope(s) for s in scopes):
        return None
    runtime = get_runtime(request)
    try:
        metas = await flow_for(runtime).available()
    except CoopError:
        return None
    if not metas and await known_scorer_names(runtime.known_scorers) is None:
        return None  # no plugin registry here (in-process runner): nothing to say
    return {m.name: m for m in metas}


async def _allows(request: Request) -> bool:
    """Whether this submission is "Allow" (a grant outlives the session: step-up first)."""
    return (await request.form()).get("decision") == "allow"


async def _consent_page_again(request: Request) -> str:
    """The consent page for the same request, to come back to after /reauth."""
    form = await request.form()
    query = [(k, v) for k, v in form.multi_items() if k in PARAMS and isinstance(v, str)]
    return f"/oauth/authorize?{urlencode(query)}"


@step_up(_consent_page_again, only_if=_allows)
async def authorize_decision(request: Request) -> Response:
    """POST: the member's decision (CSRF-checked). Allow -> code, Deny -> access_denied."""
    form = await read_form(request)
    member = await require_member(request)
    fields: ImmutableMultiDict[str, str] = ImmutableMultiDict(
        [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    )
    try:
        req = await validate(fields, request)
    except NoTrustedRedirect as exc:
        return _error_page(request, exc.message)
    except ClientRedirectError as exc:
        return _redirect_error(request, exc, after_post=True)
    assert req.scopes is not None
    chosen = chosen_scopes(req.scopes, set(_submitted_scopes(fields)))
    if chosen is None:
        return _error_page(request, "Choose one level for each score.")
    if fields.get("decision") != "allow" or not chosen:
        denied = ClientRedirectError("access_denied", "The member did not allow access.", req)
        return _redirect_error(request, denied, after_post=True)
    if fields.get("terms_version") != str(req.app.terms_version):
        # The app changed its terms after the page was shown: show the new ones instead.
        return await _consent_page(request, req, member_id=member.id, changed=True)
    lifetime = fields.get("lifetime", DEFAULT_LIFETIME)
    async with in_transaction():
        grant = await grants.create_grant(
            member_id=member.id,
            app_id=req.app.id,
            scopes=chosen,
            lifetime=lifetime,
            terms_version=req.app.terms_version,
        )
        code = await tokens.create_code(
            grant=grant,
            client_id=req.app.client_id,
            redirect_uri=req.redirect_uri,
            redirect_uri_given=req.redirect_uri_given,
            code_challenge=req.code_challenge,
        )
    return redirect_to_client(
        req.redirect_uri,
        [("code", code)],
        issuer=get_runtime(request).settings.issuer,
        state=req.state,
        after_post=True,
    )


def _submitted_scopes(fields: ImmutableMultiDict[str, str]) -> list[str]:
    """The checked boxes (`grant_scope`) and each score's chosen level (`level_<scorer>`)."""
    levels = [v for k, v in fields.multi_items() if k.startswith(LEVEL_FIELD) and v]
    return [*fields.getlist("grant_scope"), *levels]


def routes() -> list[BaseRoute]:
    return [
        Route("/oauth/authorize", authorize_page, methods=["GET"]),
        Route("/oauth/authorize", authorize_decision, methods=["POST"]),
    ]

"""Member pages for apps: who may read what (/apps), every read (/access-log), and the
developer page (/developer: register apps, personal access tokens)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coop.apps import service as apps
from coop.apps import terms as app_terms
from coop.apps.terms import Terms
from coop.consent import service as consent
from coop.consent.grants import app_terms_version
from coop.consent.models import Grant
from coop.consent.personal import PAT_LIFETIME_LABELS
from coop.consent.scopes import (
    MEMBER_MANAGE,
    PROFILE,
    describe_scope,
    known_scorer_names,
    scorer_bands,
)
from coop.errors import (
    ConflictError,
    CoopError,
    InvalidClientMetadataError,
    InvalidInputError,
    NotFoundError,
)
from coop.http.auth import require_member
from coop.http.csrf import form_text, read_form
from coop.http.flash import redirect_with_flash
from coop.http.runtime import get_runtime
from coop.http.stepup import step_up
from coop.members.models import Member
from coop.web.scopes import consent_rows
from coop.web.templating import render


def _uuid(value: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError() from None


def _scope_lines(scopes: list[str], terms: Terms) -> list[tuple[str, str | None]]:
    """Each scope in plain words with the purpose the app gave for it."""
    return [(describe_scope(s), terms.purpose_for(s)) for s in scopes]


async def apps_page(request: Request) -> Response:
    member = await require_member(request)
    await consent.expire_due_grants(member_id=member.id)
    grants = await consent.list_grants(member_id=member.id)
    last = await consent.last_access(member_id=member.id)
    agreed = await app_terms.get_many_terms(keys={(g.app_id, g.terms_version) for g in grants})
    bands = await scorer_bands(get_runtime(request).scorer_bands)
    rows = [
        {
            "grant": g,
            "app": g.app,
            "scopes": consent_rows(g.scopes, agreed[(g.app_id, g.terms_version)], bands),
            "terms": agreed[(g.app_id, g.terms_version)],
            "terms_pending": consent.terms_pending(g),
            "last_access": last.get(g.id),
        }
        for g in grants
    ]
    paused = await consent.is_sharing_paused(member_id=member.id)
    return render(request, "apps.html", {"rows": rows, "paused": paused})


async def grant_history(request: Request) -> Response:
    member = await require_member(request)
    grant_id = _uuid(request.path_params["grant_id"])
    events = await consent.list_events(member_id=member.id, grant_id=grant_id)
    grant = (await consent.list_grants(member_id=member.id, live_only=False, grant_id=grant_id))[0]
    versions = {(grant.app_id, e.terms_version) for e in events if e.terms_version is not None}
    versions.add((grant.app_id, grant.terms_version))
    words = await app_terms.get_many_terms(keys=versions)
    return render(
        request,
        "grant_history.html",
        {
            "grant": grant,
            "app": grant.app,
            "terms": words[(grant.app_id, grant.terms_version)],
            "terms_pending": consent.terms_pending(grant),
            "events": [
                (
                    e,
                    [describe_scope(s) for s in e.scopes],
                    words.get((grant.app_id, e.terms_version or 0)),
                )
                for e in events
            ],
        },
    )


async def _live_grant(member_id: uuid.UUID, grant_id: uuid.UUID) -> Grant:
    found = await consent.list_grants(member_id=member_id, grant_id=grant_id)
    if not found:
        raise NotFoundError()
    return found[0]


async def _review_path(request: Request) -> str:
    return f"/apps/grants/{_uuid(request.path_params['grant_id'])}/terms"


async def review_terms(request: Request) -> Response:
    """The app's new terms next to the ones the member agreed to, with Agree and Revoke."""
    member = await require_member(request)
    grant = await _live_grant(member.id, _uuid(request.path_params["grant_id"]))
    current = app_terms_version(grant)
    words = await app_terms.get_many_terms(
        keys={(grant.app_id, grant.terms_version), (grant.app_id, current)}
    )
    new = words[(grant.app_id, current)]
    return render(
        request,
        "grant_terms.html",
        {
            "grant": grant,
            "app": grant.app,
            "old": words[(grant.app_id, grant.terms_version)],
            "terms": new,
            "scopes": _scope_lines(grant.scopes, new),
            "terms_pending": consent.terms_pending(grant),
        },
    )


@step_up(_review_path)
async def agree_terms(request: Request) -> Response:
    member = await require_member(request)
    form = await read_form(request)
    grant_id = _uuid(request.path_params["grant_id"])
    try:
        version = int(form_text(form, "terms_version"))
    except ValueError:
        raise InvalidInputError("Agree from the page that shows the terms.") from None
    try:
        grant = await consent.agree_to_terms(
            member_id=member.id, grant_id=grant_id, version=version
        )
    except ConflictError as exc:
        return redirect_with_flash(f"/apps/grants/{grant_id}/terms", exc.message, "error")
    if grant.status == "paused":
        return redirect_with_flash(
            "/apps", "You agreed to the new terms. The app stays paused until you resume it."
        )
    return redirect_with_flash("/apps", "You agreed to the new terms. The app can read again.")


async def _change_grant(request: Request, change: Callable[..., Awaitable[object]]) -> Member:
    """Apply a consent grant function (`revoke_grant`, `pause_grant`, …) to the grant in the
    path, for the member who posted the form; returns that member."""
    member = await require_member(request)
    await read_form(request)
    await change(member_id=member.id, grant_id=_uuid(request.path_params["grant_id"]))
    return member


async def revoke_grant(request: Request) -> Response:
    await _change_grant(request, consent.revoke_grant)
    return redirect_with_flash("/apps", "Access revoked. The app can no longer read your data.")


async def pause_grant(request: Request) -> Response:
    await _change_grant(request, consent.pause_grant)
    return redirect_with_flash(
        "/apps", "Access paused. The app can read nothing until you resume it."
    )


async def resume_grant(request: Request) -> Response:
    member = await _change_grant(request, consent.resume_grant)
    if await consent.is_sharing_paused(member_id=member.id):
        message = "This app will get its access back when you resume sharing."
    else:
        message = "Access resumed."
    return redirect_with_flash("/apps", message)


async def lower_score(request: Request) -> Response:
    """Share one score of a grant less precisely, or not at all (never more)."""
    member = await require_member(request)
    form = await read_form(request)
    await consent.lower_score(
        member_id=member.id,
        grant_id=_uuid(request.path_params["grant_id"]),
        scope=form_text(form, "scope"),
        to=form_text(form, "to"),
    )
    return redirect_with_flash("/apps", "Done. The app learns less from its next request on.")


async def pause_sharing(request: Request) -> Response:
    member = await require_member(request)
    await read_form(request)
    await consent.pause_sharing(member_id=member.id)
    return redirect_with_flash("/apps", "Sharing is paused. No app can read your data.")


async def resume_sharing(request: Request) -> Response:
    member = await require_member(request)
    await read_form(request)
    await consent.resume_sharing(member_id=member.id)
    return redirect_with_flash("/apps", "Sharing resumed.")


async def access_log_page(request: Request) -> Response:
    member = await require_member(request)
    app_param = request.query_params.get("app") or None
    app_id = _uuid(app_param) if app_param else None
    try:
        page_number = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page_number = 1
    page = await consent.list_entries(member_id=member.id, app_id=app_id, page=page_number)
    return render(
        request,
        "access_log.html",
        {
            "page": page,
            "apps": await consent.list_log_apps(member_id=member.id),
            "app_filter": str(app_id) if app_id else "",
        },
    )


async def _known(request: Request) -> frozenset[str] | None:
    return await known_scorer_names(get_runtime(request).known_scorers)


async def _scope_choices(request: Request) -> list[tuple[str, str]]:
    scopes = [PROFILE]
    for name in sorted(await _known(request) or ()):
        scopes += [f"score:{name}", f"score:{name}:history"]
    scopes.append(MEMBER_MANAGE)
    return [(s, describe_scope(s)) for s in scopes]


async def _developer_page(request: Request, *, status_code: int = 200, **extra: object) -> Response:
    member = await require_member(request)
    own_apps = await apps.list_apps(owner_id=member.id)
    context: dict[str, object] = {
        "own_apps": own_apps,
        "own_terms": await app_terms.get_many_terms(
            keys={(a.id, a.terms_version) for a in own_apps}
        ),
        "tokens": await consent.list_personal_tokens(member_id=member.id),
        "scope_choices": await _scope_choices(request),
        "pat_lifetimes": list(PAT_LIFETIME_LABELS.items()),
        "issuer": get_runtime(request).settings.issuer,
        **extra,
    }
    return render(request, "developer.html", context, status_code=status_code)


async def developer_page(request: Request) -> Response:
    return await _developer_page(request)


def _terms_from(form: FormData) -> Terms:
    """The purpose, score purposes, retention and policy URL fields of a /developer form."""
    return app_terms.validate_terms(
        purpose=form_text(form, "purpose"),
        score_purposes=app_terms.score_purposes_from_lines(
            form_text(form, "score_purposes").splitlines()
        ),
        retention_days=form_text(form, "retention_days"),
        policy_uri=form_text(form, "policy_uri"),
    )


@step_up("/developer")
async def register_app(request: Request) -> Response:
    member = await require_member(request)
    form = await read_form(request)
    uris = [u for u in form_text(form, "redirect_uris").splitlines() if u.strip()]
    try:
        registered = await apps.create_app(
            terms=_terms_from(form),
            name=form_text(form, "name"),
            redirect_uris=uris,
            public=form_text(form, "client_type") == "public",
            homepage=form_text(form, "homepage") or None,
            webhook_url=form_text(form, "webhook_url") or None,
            score_notices=form_text(form, "score_notices") == "yes",
            owner_id=member.id,
            vault=get_runtime(request).vault,
        )
    except CoopError as exc:
        return await _developer_page(
            request, status_code=400, app_error=exc.message, app_error_code=exc.code
        )
    return await _developer_page(request, new_app=registered.client_information())


@step_up("/developer")
async def change_app_terms(request: Request) -> Response:
    """The owner declares new terms: each member must agree before the app reads again."""
    member = await require_member(request)
    form = await read_form(request)
    app_id = _uuid(request.path_params["app_id"])
    try:
        terms = await apps.change_terms(terms=_terms_from(form), app_id=app_id, owner_id=member.id)
    except InvalidClientMetadataError as exc:
        return await _developer_page(
            request,
            status_code=400,
            terms_error=exc.message,
            terms_error_code=exc.code,
            terms_app=str(app_id),
        )
    return redirect_with_flash(
        "/developer",
        f"Terms saved as version {terms.version}. Each member who allowed the app must agree "
        "to them before it reads again.",
    )


@step_up("/developer")
async def delete_app(request: Request) -> Response:
    member = await require_member(request)
    await read_form(request)
    await apps.delete_app(owner_id=member.id, app_id=_uuid(request.path_params["app_id"]))
    return redirect_with_flash("/developer", "The app was deleted and its access ended.")


@step_up("/developer")
async def create_token(request: Request) -> Response:
    member = await require_member(request)
    form = await read_form(request)
    try:
        created = await consent.create_personal_token(
            member_id=member.id,
            name=form_text(form, "token_name"),
            scopes=[s for s in form.getlist("token_scope") if isinstance(s, str)],
            lifetime=form_text(form, "token_lifetime"),
            known_scorers=await _known(request),
        )
    except CoopError as exc:
        return await _developer_page(
            request, status_code=400, token_error=exc.message, token_error_code=exc.code
        )
    return await _developer_page(request, new_token=created.token, new_token_name=created.row.name)


async def revoke_token(request: Request) -> Response:
    member = await require_member(request)
    await read_form(request)
    await consent.revoke_personal_token(
        member_id=member.id, token_id=_uuid(request.path_params["token_id"])
    )
    return redirect_with_flash("/developer", "The token was revoked.")


def routes() -> list[BaseRoute]:
    return [
        Route("/apps", apps_page, methods=["GET"]),
        Route("/apps/grants/{grant_id}", grant_history, methods=["GET"]),
        Route("/apps/grants/{grant_id}/terms", review_terms, methods=["GET"]),
        Route("/apps/grants/{grant_id}/agree", agree_terms, methods=["POST"]),
        Route("/apps/grants/{grant_id}/revoke", revoke_grant, methods=["POST"]),
        Route("/apps/grants/{grant_id}/pause", pause_grant, methods=["POST"]),
        Route("/apps/grants/{grant_id}/lower", lower_score, methods=["POST"]),
        Route("/apps/grants/{grant_id}/resume", resume_grant, methods=["POST"]),
        Route("/apps/pause", pause_sharing, methods=["POST"]),
        Route("/apps/resume", resume_sharing, methods=["POST"]),
        Route("/access-log", access_log_page, methods=["GET"]),
        Route("/developer", developer_page, methods=["GET"]),
        Route("/developer/apps", register_app, methods=["POST"]),
        Route("/developer/apps/{app_id}/terms", change_app_terms, methods=["POST"]),
        Route("/developer/apps/{app_id}/delete", delete_app, methods=["POST"]),
        Route("/developer/tokens", create_token, methods=["POST"]),
        Route("/developer/tokens/{token_id}/revoke", revoke_token, methods=["POST"]),
    ]

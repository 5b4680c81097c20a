"""The Scorers page: what each installed scorer reads, and Enable / Disable / Accept new
version per member."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coop.errors import (
    ConflictError,
    NotFoundError,
    SandboxUnavailableError,
    ScorerUnavailableError,
)
from coop.http.auth import require_member
from coop.http.csrf import read_form
from coop.http.flash import redirect_with_flash
from coop.http.runtime import get_runtime
from coop.jobs.scoring import flow_for
from coop.scoring import absence, declared, service
from coop.web.templating import render


async def scorers_page(request: Request) -> Response:
    member = await require_member(request)
    flow = flow_for(get_runtime(request))
    error = None
    try:
        available = await flow.available()
    except SandboxUnavailableError as exc:
        available, error = [], exc
    consents = await service.list_consents(member_id=member.id)
    pending = await flow.pending_versions(member_id=member.id) if available else {}
    runs = await service.list_last_runs(member_id=member.id)
    entries = [
        {
            "meta": meta,
            "reads": declared.describe(meta.read_fields()),
            "enabled": consents.get(meta.name, False),
            "last_run": runs.get(meta.name, (None, ""))[0],
            "run": absence.latest_run(
                title=meta.title, last_status=runs.get(meta.name, (None, ""))[1], value=None
            ),
            "waiting": pending.get(meta.name),
        }
        for meta in available
    ]
    return render(request, "scorers.html", {"entries": entries, "error": error})


async def enable(request: Request) -> Response:
    """Record the consent and answer at once: the first score is computed in the background
    (a slow scorer never holds the member's click); the pages show it being computed."""
    member = await require_member(request)
    await read_form(request)
    name = str(request.path_params["name"])
    flow = flow_for(get_runtime(request))
    try:
        meta = await flow.meta(name)
        await flow.enable(member_id=member.id, scorer=name, wait=False)
    except (ScorerUnavailableError, SandboxUnavailableError) as exc:
        return redirect_with_flash("/scorers", f"{exc.message} ({exc.code})", "error")
    return redirect_with_flash(
        "/scorers",
        f"{meta.title} is on. Your score is being computed; it appears on the Scores page "
        "when it is ready.",
    )


async def disable(request: Request) -> Response:
    member = await require_member(request)
    await read_form(request)
    name = str(request.path_params["name"])
    flow = flow_for(get_runtime(request))
    try:
        title = (await flow.meta(name)).title
    except (ScorerUnavailableError, SandboxUnavailableError):
        title = name  # an uninstalled scorer can still be disabled (and its scores deleted)
    deleted = await flow.disable(member_id=member.id, scorer=name)
    scores = "1 score was" if deleted == 1 else f"{deleted} scores were"
    return redirect_with_flash("/scorers", f"{title} is off. {scores} deleted.")


async def accept(request: Request) -> Response:
    """Accept the installed version of an enabled scorer that reads more than before."""
    member = await require_member(request)
    await read_form(request)
    name = str(request.path_params["name"])
    back = f"/scores/{name}"
    flow = flow_for(get_runtime(request))
    try:
        meta = await flow.meta(name)
        await flow.accept_version(member_id=member.id, scorer=name, wait=False)
    except (ScorerUnavailableError, SandboxUnavailableError) as exc:
        return redirect_with_flash(back, f"{exc.message} ({exc.code})", "error")
    except NotFoundError as exc:
        return redirect_with_flash("/scorers", exc.message, "error")
    return redirect_with_flash(
        back,
        f"You accepted {meta.title} {meta.version}. Your score is being recomputed with it.",
    )


async def keep(request: Request) -> Response:
    """ "Keep current score": decline a new version's preview; the last score stays frozen."""
    member = await require_member(request)
    await read_form(request)
    name = str(request.path_params["name"])
    back = f"/scores/{name}"
    flow = flow_for(get_runtime(request))
    try:
        meta = await flow.meta(name)
        await flow.keep_current(member_id=member.id, scorer=name)
    except (ScorerUnavailableError, SandboxUnavailableError) as exc:
        return redirect_with_flash(back, f"{exc.message} ({exc.code})", "error")
    except (NotFoundError, ConflictError) as exc:
        return redirect_with_flash(back, exc.message, "error")
    return redirect_with_flash(
        back, f"You kept your current {meta.title} score; version {meta.version} does not run."
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/scorers", scorers_page, methods=["GET"]),
        Route("/scorers/{name:str}/enable", enable, methods=["POST"]),
        Route("/scorers/{name:str}/disable", disable, methods=["POST"]),
        Route("/scorers/{name:str}/accept", accept, methods=["POST"]),
        Route("/scorers/{name:str}/keep", keep, methods=["POST"]),
    ]

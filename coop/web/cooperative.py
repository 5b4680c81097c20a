"""The Cooperative page: the members' proposals on scorers, the rules, and the vote controls
(docs/governance.md)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coop.connectors.spec import KINDS
from coop.errors import CoopError, GovernanceOffError, InvalidChoiceError
from coop.governance import service as governance
from coop.governance import statistics
from coop.governance.rules import CHOICES, Rules
from coop.http.auth import require_member
from coop.http.csrf import read_form
from coop.http.flash import redirect_with_flash
from coop.http.runtime import get_runtime
from coop.web.templating import render

PAGE = "/cooperative"
CHOICE_WORDS = {"yes": "Yes", "no": "No", "abstain": "Abstain"}


async def cooperative_page(request: Request) -> Response:
    member = await require_member(request)
    runtime = get_runtime(request)
    found = await governance.list_for_member(vault=runtime.vault, member_id=member.id)
    context = {
        "enabled": runtime.settings.governance,
        "rules": Rules.from_settings(runtime.settings),
        "open": [m for m in found if m.proposal.is_open],
        "closed": [m for m in found if not m.proposal.is_open],
        "kinds": KINDS,
        "choices": CHOICE_WORDS,
        "sharing": await statistics.is_sharing(member_id=member.id),
        "min_sharers": runtime.settings.governance_min_sharers,
    }
    return render(request, "cooperative.html", context)


async def vote(request: Request) -> Response:
    member = await require_member(request)
    form = await read_form(request)
    runtime = get_runtime(request)
    proposal_id: uuid.UUID = request.path_params["proposal_id"]
    back = f"{PAGE}#proposal-{proposal_id}"
    choice = str(form.get("choice") or "")
    try:
        if not runtime.settings.governance:
            raise GovernanceOffError()
        if choice not in CHOICES:
            raise InvalidChoiceError("Choose Yes, No or Abstain, then Vote.")
        await governance.cast_vote(
            vault=runtime.vault, member_id=member.id, proposal_id=proposal_id, choice=choice
        )
    except CoopError as exc:
        if exc.status >= 500:
            raise
        return redirect_with_flash(back, f"{exc.message} ({exc.code})", "error")
    return redirect_with_flash(
        back, f"Your vote is recorded: {CHOICE_WORDS[choice]}. You can change it until it closes."
    )


async def share(request: Request) -> Response:
    """Share (or stop sharing) previews for the aggregate statistics on proposals."""
    member = await require_member(request)
    form = await read_form(request)
    on = form.get("share") == "yes"
    await statistics.set_sharing(member_id=member.id, share=on)
    message = (
        "You share your previews for the cooperative's statistics, from the next proposal on."
        if on
        else "You no longer share your previews for the cooperative's statistics."
    )
    return redirect_with_flash(f"{PAGE}#statistics-heading", message)


def routes() -> list[BaseRoute]:
    return [
        Route(PAGE, cooperative_page, methods=["GET"]),
        Route(f"{PAGE}/statistics", share, methods=["POST"]),
        Route(f"{PAGE}/proposals/{{proposal_id:uuid}}/vote", vote, methods=["POST"]),
    ]

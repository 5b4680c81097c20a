"""The Scores pages: the dashboard ("/") and one score's detail (/scores/{name})."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coop.connectors.spec import KINDS
from coop.errors import NotFoundError, SandboxUnavailableError
from coop.governance import service as governance
from coop.governance.service import ProposalView
from coop.http.auth import require_member
from coop.http.csrf import read_form
from coop.http.flash import redirect_with_flash
from coop.http.runtime import Runtime, get_runtime
from coop.jobs.scoring import RecordLink, ScoringFlow, flow_for
from coop.scoring import service, versions
from coop.scoring.validate import ScorerMeta
from coop.web.templating import render

LABELS = {  # coop.scoring.causes kinds, as the member reads them
    "scorer_version": "new scorer version",
    "new_data": "new data",
    "removed_data": "removed data",
    "time_passed": "time passed",
    "unexplained": "unexplained",
}
ACTIONS = {  # consent events (coop.scoring.versions), as the member reads them
    "enabled": "enabled",
    "disabled": "disabled",
    "asked": "a new version asked to read more, and stopped until you accept",
    "accepted": "you accepted a new version",
    "updated": "a new version was installed that reads nothing more",
    "kept": "you kept your current score instead of a new version",
}
CHART_W, CHART_H, PAD = 320.0, 90.0, 6.0


@dataclass(frozen=True)
class Chart:
    """An inline SVG line chart (server-rendered: no script, no external asset)."""

    points: str
    dots: tuple[tuple[float, float], ...]
    low: float
    high: float
    summary: str
    width: float = CHART_W
    height: float = CHART_H


def chart(history: Sequence[service.ScoreView], meta: ScorerMeta | None) -> Chart | None:
    """Oldest to newest, scaled to the scorer's declared range."""
    ordered = list(reversed(history))
    if len(ordered) < 2:
        return None
    low, high = (
        meta.range if meta else (min(h.value for h in ordered), max(h.value for h in ordered))
    )
    span = (high - low) or 1.0
    step = (CHART_W - 2 * PAD) / (len(ordered) - 1)
    dots = tuple(
        (
            round(PAD + i * step, 1),
            round(CHART_H - PAD - (h.value - low) / span * (CHART_H - 2 * PAD), 1),
        )
        for i, h in enumerate(ordered)
    )
    summary = (
        f"{len(ordered)} scores from {ordered[0].value:.1f} "
        f"({ordered[0].computed_at:%Y-%m-%d}) to {ordered[-1].value:.1f} "
        f"({ordered[-1].computed_at:%Y-%m-%d})"
    )
    return Chart(" ".join(f"{x},{y}" for x, y in dots), dots, low, high, summary)


async def _pending(runtime: Runtime, member_id: uuid.UUID) -> dict[str, versions.Pending]:
    return await flow_for(runtime).pending_versions(member_id=member_id)


async def _metas(flow: ScoringFlow) -> dict[str, ScorerMeta]:
    try:
        return {m.name: m for m in await flow.installed()}
    except SandboxUnavailableError:
        return {}


def _record_ids(score: service.ScoreView) -> list[str]:
    ids = [c.record_id for c in score.explanation.contributions] if score.explanation else []
    if score.change:
        ids += [c.record_id or "" for c in score.change.causes]
    return [i for i in ids if i]


@dataclass(frozen=True)
class ScoreCard:
    score: service.ScoreView
    meta: ScorerMeta | None
    chart: Chart | None


async def dashboard(request: Request) -> Response:
    member = await require_member(request)
    runtime = get_runtime(request)
    scores = await service.list_current_scores(vault=runtime.vault, member_id=member.id)
    cards: list[ScoreCard] = []
    records: dict[str, RecordLink] = {}
    if scores:
        flow = flow_for(runtime)
        metas = await _metas(flow)
        for score in scores:
            history = await service.list_history(
                vault=runtime.vault, member_id=member.id, scorer=score.scorer, limit=30
            )
            meta = metas.get(score.scorer)
            cards.append(ScoreCard(score, meta, chart(history, meta)))
        records = await flow.describe_records(
            member_id=member.id, record_ids=[i for s in scores for i in _record_ids(s)]
        )
    enabled = await service.list_enabled_scorers(member_id=member.id)
    context = {
        "cards": cards,
        "records": records,
        "labels": LABELS,
        "enabled": enabled,
        "pending": await _pending(runtime, member.id) if scores else {},
        "votes_open": await _votes_open(runtime),
    }
    return render(request, "scores.html", context)


async def _votes_open(runtime: Runtime) -> list[ProposalView]:
    """Open proposals, for the notice on Scores (governance on only)."""
    if not runtime.settings.governance:
        return []
    return await governance.list_proposals(state=governance.OPEN)


async def score_detail(request: Request) -> Response:
    member = await require_member(request)
    runtime = get_runtime(request)
    name = str(request.path_params["name"])
    flow = flow_for(runtime)
    metas = await _metas(flow)
    history = await service.list_history(
        vault=runtime.vault, member_id=member.id, scorer=name, limit=100
    )
    if name not in metas and not history:
        raise NotFoundError("There is no scorer by that name.")
    current = None
    if history:
        current = await service.get_score(
            vault=runtime.vault, member_id=member.id, score_id=history[0].id
        )
    ids = _record_ids(current) if current else []
    for h in history:
        ids += _record_ids(h)
    meta = metas.get(name)
    context = {
        "name": name,
        "meta": meta,
        "reads": [(k, KINDS.get(k, k)) for k in (meta.reads if meta else ())],
        "current": current,
        "history": history,
        "chart": chart(history, meta),
        "records": await flow.describe_records(member_id=member.id, record_ids=ids),
        "labels": LABELS,
        "actions": ACTIONS,
        "events": await service.list_consent_events(member_id=member.id, scorer=name),
        "waiting": (await _pending(runtime, member.id)).get(name),
        "enabled": name in await service.list_enabled_scorers(member_id=member.id),
    }
    return render(request, "score_detail.html", context)


async def recompute(request: Request) -> Response:
    member = await require_member(request)
    form = await read_form(request)
    raw = str(form.get("scorer") or "")
    scorers = [raw] if raw else None
    back = f"/scores/{raw}" if raw else "/"
    try:
        outcomes = await flow_for(get_runtime(request)).recompute_member(
            member_id=member.id, scorers=scorers
        )
    except SandboxUnavailableError as exc:
        return redirect_with_flash(back, f"{exc.message} ({exc.code})", "error")
    failed = [f"{o.scorer} ({o.code})" for o in outcomes if o.status == "failed"]
    if failed:
        return redirect_with_flash(
            back, f"Some scores could not be computed: {', '.join(failed)}.", "error"
        )
    if not outcomes:
        return redirect_with_flash(back, "Enable a scorer first.", "error")
    return redirect_with_flash(back, "Your scores were recomputed.")


def routes() -> list[BaseRoute]:
    return [
        Route("/", dashboard, methods=["GET"]),
        Route("/scores/recompute", recompute, methods=["POST"]),
        Route("/scores/{name:str}", score_detail, methods=["GET"]),
    ]


__all__ = ["chart", "routes"]

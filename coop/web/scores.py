"""The Scores pages: the dashboard ("/") and one score's detail (/scores/{name})."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coop.errors import NotFoundError, SandboxUnavailableError
from coop.governance import service as governance
from coop.governance.service import ProposalView
from coop.http.auth import require_member
from coop.http.csrf import read_form
from coop.http.flash import redirect_with_flash
from coop.http.runtime import Runtime, get_runtime
from coop.jobs.scoring import RecordLink, ScoringFlow, flow_for
from coop.scoring import absence, declared, service, versions
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
    found = await _available(flow)
    return found or {}


async def _available(flow: ScoringFlow) -> dict[str, ScorerMeta] | None:
    """The installed scorers by name, or None when no scorer can run here right now."""
    try:
        return {m.name: m for m in await flow.installed()}
    except SandboxUnavailableError:
        return None


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
    enabled = await service.list_enabled_scorers(member_id=member.id)
    cards: list[ScoreCard] = []
    records: dict[str, RecordLink] = {}
    flow = flow_for(runtime)
    metas = await _metas(flow) if enabled else {}
    runs = await service.list_last_runs(member_id=member.id)
    if scores:
        for score in scores:
            history = await service.list_history(
                vault=runtime.vault, member_id=member.id, scorer=score.scorer, limit=30
            )
            meta = metas.get(score.scorer)
            cards.append(ScoreCard(score, meta, chart(history, meta)))
        records = await flow.describe_records(
            member_id=member.id, record_ids=[i for s in scores for i in _record_ids(s)]
        )
    scored = {s.scorer for s in scores}

    def title(name: str) -> str:
        meta = metas.get(name)
        return meta.title if meta else name

    def status(name: str) -> str:
        return runs.get(name, (None, ""))[1]

    stopped = [title(n) for n in enabled if status(n) == absence.JOB_FAILED]
    context = {
        "computing": [title(n) for n in enabled if status(n) == absence.QUEUED],
        "stopped": absence.job_failed_words(stopped) if stopped else "",
        "unscored": [(n, title(n)) for n in enabled if n not in scored],
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
    available = await _available(flow)
    metas = available or {}
    history = await service.list_history(
        vault=runtime.vault, member_id=member.id, scorer=name, limit=100
    )
    run = await service.get_run(member_id=member.id, scorer=name)
    if name not in metas and not history and (available is not None or not run.enabled):
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
    title = meta.title if meta else name
    why = None
    if current is None:
        why = await flow.why_no_score(
            member_id=member.id, scorer=name, meta=meta, available=available is not None
        )
    context = {
        "name": name,
        "meta": meta,
        "reads": declared.describe(meta.read_fields()) if meta else [],
        "current": current,
        "why": why,
        "run": absence.latest_run(
            title=title,
            last_status=run.last_status,
            value=current.value if current else None,
        )
        if run.enabled
        else None,
        "last_run_at": run.last_run_at,
        "history": history,
        "chart": chart(history, meta),
        "records": await flow.describe_records(member_id=member.id, record_ids=ids),
        "labels": LABELS,
        "actions": ACTIONS,
        "events": await service.list_consent_events(member_id=member.id, scorer=name),
        "waiting": (await _pending(runtime, member.id)).get(name),
        "enabled": run.enabled,
    }
    return render(request, "score_detail.html", context)


async def recompute(request: Request) -> Response:
    """Queue a run and answer at once (Post/Redirect/Get): the page it returns to says the
    run is queued, then (on reload, or by itself with coop.js) the new value or why not."""
    member = await require_member(request)
    form = await read_form(request)
    raw = str(form.get("scorer") or "")
    scorers = [raw] if raw else None
    back = f"/scores/{raw}" if raw else "/"
    flow = flow_for(get_runtime(request))
    queued = await flow.recompute_soon(member_id=member.id, scorers=scorers)
    if not queued:
        return redirect_with_flash(back, "Enable a scorer first.", "error")
    if raw:
        title = (await _metas(flow)).get(raw)
        what = f"your {title.title if title else raw} score"
    else:
        what = "your scores" if len(queued) > 1 else "your score"
    return redirect_with_flash(
        back, f"Recomputing {what}. This page shows the result when it is ready."
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/", dashboard, methods=["GET"]),
        Route("/scores/recompute", recompute, methods=["POST"]),
        Route("/scores/{name:str}", score_detail, methods=["GET"]),
    ]


__all__ = ["chart", "routes"]

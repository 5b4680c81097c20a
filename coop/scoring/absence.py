"""Why a member has no score from a scorer, and how its latest run went, in plain words.

Decided from what coop records (the consent row's last run and status, the consent events,
a new version waiting, whether the member has records of the kinds it reads), never from
the scorer's own output: the words name no error code and no internals. One decision here;
pages only render it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

# Run statuses beyond coop.scoring.service's (stored, unchanged, previewed, failed codes):
QUEUED = "queued"  # asked for (Enable, Recompute, Accept), not finished yet
INTERRUPTED = "interrupted"  # queued in a process that stopped before the run (SQLite)
JOB_FAILED = "job_failed"  # its job stopped on an error of coop's (coop.jobs.scoring)

TIMEOUT_CODES = frozenset({"plugin_timeout"})
OK_STATUSES = frozenset({"stored", "unchanged", "previewed"})
WAITING_STATUSES = frozenset({"needs_consent", "kept"})  # the versions gate held it back


@dataclass(frozen=True)
class Facts:
    """What coop knows about one member and one scorer (gathered by the scoring flow)."""

    title: str
    installed: bool  # loaded on this server now
    scoring_available: bool  # the sandbox runs (False: no scorer runs here right now)
    enabled: bool
    ever_disabled: bool
    last_status: str  # "" before any run
    last_run_at: datetime | None
    needs_consent: bool  # a new version reads more and waits for the member
    kept: bool  # the member kept the score of an earlier version
    has_records: bool  # the member has records of a kind it reads
    reads_words: str  # what it reads, e.g. "posts you published: dates only"


@dataclass(frozen=True)
class Reason:
    """`code` is stable (tests, styling); `text` is for the member; `computing` says the
    page should offer to check again; `act` names what the member can do: enable,
    recompute, accept, connect, or ""."""

    code: str
    text: str
    computing: bool = False
    act: str = ""


def failed(status: str) -> bool:
    return bool(status) and status not in OK_STATUSES | WAITING_STATUSES | {QUEUED}


def failure_words(title: str, status: str) -> str:
    """A failed run, for the member: what happened and that it is not their doing."""
    if status in TIMEOUT_CODES:
        what = f"{title} took longer than this cooperative allows and was stopped"
    elif status == "sandbox_unavailable":
        return "Scoring is not available on this cooperative right now; it resumes by itself."
    elif status == INTERRUPTED:
        return (
            f"coop restarted before it could compute your {title} score. Nothing is wrong "
            "with your data or the scorer: it runs after your next sync, or now with Recompute."
        )
    elif status == JOB_FAILED:
        return job_failed_words([title])
    else:
        what = f"{title} could not compute your score"
    return (
        f"{what}. This is a fault in the scorer, not in your data or anything you did; "
        "the cooperative's operator has been told. Nothing was stored."
    )


def job_failed_words(titles: Sequence[str]) -> str:
    """Scores whose job stopped on an error of coop's own (not the scorer's): one sentence
    for one or several of them."""
    if len(titles) == 1:
        what = f"your {titles[0]} score"
    else:
        what = f"your {', '.join(titles[:-1])} and {titles[-1]} scores"
    return (
        f"coop ran into an error of its own before it could compute {what}. It was not "
        "caused by anything you did, and nothing was stored: Recompute to try again (it also "
        "runs after your next sync)."
    )


def why_no_score(facts: Facts) -> Reason:
    """The one reason a member sees where a score would be."""
    title = facts.title
    if not facts.enabled:
        if facts.ever_disabled:
            return Reason(
                "disabled",
                f"You turned {title} off, so it does not run and its scores were deleted. "
                "Enable it again to get a new score.",
                act="enable",
            )
        return Reason(
            "not_enabled",
            f"You have not enabled {title}. It reads nothing of yours until you do.",
            act="enable",
        )
    if not facts.installed:
        return Reason(
            "not_installed",
            f"{title} is no longer installed on this cooperative, so it cannot score.",
        )
    if not facts.scoring_available:
        return Reason("unavailable", failure_words(title, "sandbox_unavailable"))
    if facts.needs_consent:
        return Reason(
            "needs_consent",
            f"A new version of {title} reads more of your data than you agreed to. "
            "It does not run until you accept it.",
            act="accept",
        )
    if facts.kept:
        return Reason(
            "kept",
            f"You chose to keep an earlier version's score, so the installed version of "
            f"{title} does not run on your data.",
            act="accept",
        )
    if facts.last_status == QUEUED:
        return Reason(
            "computing",
            f"Your {title} score is being computed. This page shows it when it is ready.",
            computing=True,
        )
    if facts.last_status == INTERRUPTED:  # not a failure: shown calmly, not as an error
        return Reason("interrupted", failure_words(title, INTERRUPTED), act="recompute")
    if failed(facts.last_status):
        return Reason("failed", failure_words(title, facts.last_status), act="recompute")
    if not facts.has_records:
        return Reason(
            "no_records",
            f"{title} reads {facts.reads_words}, and coop has none of yours yet. Connect a "
            "source; your score is computed after its first sync.",
            act="connect",
        )
    return Reason(
        "not_run",
        f"{title} has not run on your data yet. It runs after each sync of your sources, "
        "or now with Recompute.",
        act="recompute",
    )


@dataclass(frozen=True)
class RunState:
    """How the latest run went, for a page that already shows a score."""

    code: str  # computing | failed | interrupted | done | ""
    text: str
    recompute: bool = False  # its words ask the member to Recompute: offer it beside them

    @property
    def computing(self) -> bool:
        return self.code == "computing"


def latest_run(*, title: str, last_status: str, value: float | None) -> RunState:
    """A note beside an existing score: being recomputed, recomputed (with the value it
    gave), or the last run failed (the previous score stays)."""
    if last_status == QUEUED:
        return RunState("computing", f"Your {title} score is being recomputed.")
    if failed(last_status):
        kept = " Your previous score stays." if value is not None else ""
        code = "interrupted" if last_status == INTERRUPTED else "failed"
        again = last_status in (INTERRUPTED, JOB_FAILED)
        return RunState(code, failure_words(title, last_status) + kept, recompute=again)
    if value is not None and last_status == "stored":
        return RunState("done", f"Recomputed: your {title} score is {value:.1f}.")
    if value is not None and last_status == "unchanged":
        return RunState("done", f"Recomputed: your {title} score is unchanged at {value:.1f}.")
    return RunState("", "")

"""Field-level declarations (issue 16): a scorer that names the fields of a kind it reads gets
only those, from the server, `coop plugins run` and coop.testing alike; the pages say exactly
that; a new version that reads more fields waits for the member, one that reads fewer is a
note."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from coop.connectors.spec import KINDS
from coop.scoring import declared, service, versions
from coop.scoring.models import Score, ScorerConsent
from coop.scoring.runner import InProcessRunner
from coop.scoring.spec import API_VERSION, InputRecord, ScoreResult
from coop.scoring.tryout import visible
from coop.scoring.validate import ContractViolation, ScorerMeta, check_contract
from coop.testing import activity, post, run_scorer
from coop.vault import Vault
from tests.scoring.factories import make_member
from tests.scoring.test_service import DecayScorer, compute, member_records


class Seen:
    """What the last scorer run was given (in-process runs only)."""

    records: list[InputRecord] = []


class DatesOnlyScorer:
    api_version = API_VERSION
    name = "dates"
    version = "1.0"
    title = "Dates"
    description = "Counts posts by date."
    reads = ("post", "activity")
    fields = {"post": ("occurred_at",)}
    range = (0.0, 1000.0)  # (activity read whole: the page words say both)
    needs_text = False
    homepage = ""

    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        Seen.records = list(records)
        return ScoreResult(value=float(len(records)))


class DatesDecayScorer(DecayScorer):  # version 2: reads post dates only
    version = "2.0"
    fields = {"post": ("occurred_at",)}


class CountsDecayScorer(DecayScorer):  # version 3: post dates and counts again
    version = "3.0"
    fields = {"post": ("occurred_at", "counts")}


def meta_of(scorer: object) -> ScorerMeta:
    return check_contract(scorer)


def test_a_plain_kind_still_reads_every_field() -> None:
    meta = meta_of(DecayScorer())
    assert meta.fields == ()
    assert meta.read_fields() == {"post": declared.ALL}
    assert declared.describe(meta.read_fields()) == [KINDS["post"]]


def test_declared_fields_are_normalised_and_described_exactly() -> None:
    meta = meta_of(DatesOnlyScorer())
    assert meta.fields == (("post", ("occurred_at",)),)
    assert declared.describe(meta.read_fields()) == [
        "posts you published: dates only",
        KINDS["activity"],
    ]
    both = type("Both", (DatesOnlyScorer,), {"fields": {"post": ["network", "occurred_at"]}})
    assert declared.describe(meta_of(both()).read_fields())[0] == (
        "posts you published: dates and networks only"
    )
    every = {"post": ("counts", "network", "occurred_at")}
    full = type("Full", (DatesOnlyScorer,), {"fields": every})
    assert meta_of(full()).fields == ()  # every field: the same as not declaring


def test_the_declaration_survives_the_trip_from_the_sandbox() -> None:
    meta = meta_of(DatesOnlyScorer())
    assert ScorerMeta.from_json(meta.to_json()) == meta


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (["post"], "`fields` must map kinds in `reads` to tuples of field names"),
        ({"repository": ("occurred_at",)}, "`fields` names 'repository', which is not in `reads`"),
        ({"post": "occurred_at"}, "`fields['post']` must be a tuple of field names"),
        ({"post": ("occurred_at", "likes")}, "names unknown fields: likes; known: occurred_at"),
        ({"post": ("occurred_at", "text")}, "(text is `needs_text`)"),
        ({"post": ("counts",)}, "must include 'occurred_at': every record comes with its date"),
    ],
)
def test_a_wrong_declaration_fails_loading_with_what_to_fix(fields: object, message: str) -> None:
    broken = type("Broken", (DatesOnlyScorer,), {"fields": fields})
    with pytest.raises(ContractViolation) as caught:
        check_contract(broken())
    assert message in str(caught.value)


def test_coop_testing_gives_only_the_declared_fields() -> None:
    record = post(favourites=4, text="words", network="mastodon")
    run_scorer(DatesOnlyScorer(), [record, activity()])
    seen, other = Seen.records
    assert other.kind == "activity"
    assert (seen.counts, seen.network, seen.text) == ({}, None, None)
    assert seen.occurred_at == record.occurred_at
    # `coop plugins run` shares the filter.
    [again] = visible(meta_of(DatesOnlyScorer()), [record])
    assert (again.counts, again.network) == ({}, None)


async def test_the_server_gives_only_the_declared_fields(db: str, vault: Vault) -> None:
    runner = InProcessRunner()
    meta = runner.add(DatesOnlyScorer)
    member = await make_member(vault)
    await service.enable_scorer(member_id=member, meta=meta)
    records = [
        service.MemberRecord(uuid.uuid4(), "post", r.occurred_at, {"favourites": 3}, "t", "x")
        for r in member_records(2)
    ]
    outcome = await service.compute_score(
        vault=vault, runner=runner, member_id=member, scorer="dates", records=records
    )
    assert outcome.status == "stored"
    assert [(r.counts, r.network, r.text) for r in Seen.records] == [({}, None, None)] * 2
    consent = await ScorerConsent.get(member_id=member, scorer="dates")
    assert consent.accepted_reads == "post:occurred_at,activity"


@pytest.fixture
async def member(db: str, vault: Vault) -> uuid.UUID:
    member = await make_member(vault)
    await service.enable_scorer(member_id=member, meta=meta_of(DecayScorer()))
    return member


def runner_of(scorer: type) -> InProcessRunner:
    runner = InProcessRunner()
    runner.add(scorer)
    return runner


async def test_reading_fewer_fields_is_a_note_and_more_fields_waits_for_consent(
    vault: Vault, member: uuid.UUID
) -> None:
    await compute(vault, runner_of(DecayScorer), member, member_records(3))
    narrower = runner_of(DatesDecayScorer)
    outcome = await compute(vault, narrower, member, member_records(3))
    assert outcome.status == "previewed"  # runs (into a preview): reading less is not asked
    [waiting] = (await versions.pending(member_id=member, metas=[narrower.meta("decay")])).values()
    assert not waiting.gap.needs_consent
    assert waiting.gap.note() == (
        "no longer reads posts you published: their reaction counts and networks"
    )
    await versions.accept_version(member_id=member, meta=narrower.meta("decay"))
    assert await compute(vault, narrower, member, member_records(3)) is not None

    wider = runner_of(CountsDecayScorer)
    outcome = await compute(vault, wider, member, member_records(3))
    assert (outcome.status, outcome.code) == ("dropped", "needs_consent")
    [asked] = (await versions.pending(member_id=member, metas=[wider.meta("decay")])).values()
    assert asked.gap.what_is_new() == "posts you published: their reaction counts"
    events = await service.list_consent_events(member_id=member, scorer="decay")
    assert events[-1].action == "asked"
    assert events[-1].reads == ("post",)
    assert events[-1].read_words == ("posts you published: dates and reaction counts only",)
    assert await Score.filter(member_id=member, scorer_version="3.0").count() == 0


def test_the_reference_doc_example_runs() -> None:
    """The code block in docs/plugins/reference.md "Reading only some fields" is a test."""
    text = (Path(__file__).resolve().parents[2] / "docs/plugins/reference.md").read_text()
    section = text.split("## Reading only some fields", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    namespace: dict[str, object] = {"__name__": "reference_example"}
    exec(compile(block, "reference.md", "exec"), namespace)  # noqa: S102 (our own docs)
    meta = check_contract(namespace["PostDaysScorer"]())
    assert declared.describe(meta.read_fields()) == ["posts you published: dates only"]

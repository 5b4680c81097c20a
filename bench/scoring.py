"""Scoring benchmark: the cost of isolation, measured in one run.

For a 1,000-record member and each reference scorer it times, per member:
  raw        scorer.score(records, now) on already-built objects (the floor)
  in-process coop's InProcessRunner: wire encoding + score + host validation, no isolation
  sandboxed  the real Sandbox: fresh locked-down child per member, same encoding/validation
and prints the sandboxed/in-process ratio (target <= 1.2x), plus members scored per second
with COOP_SCORER_PARALLEL children at once. Then the same comparison end to end, the way
the server scores a member: load and decrypt 1,000 stored records (SQLite), score with both
reference scorers, seal and store (coop.jobs.scoring.ScoringFlow.recompute_member). And the
fixed cost of a run (one record), with and without bubblewrap's reduced view.

Usage: python bench/scoring.py [--records 1000] [--runs 60] [--members 100]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coop.scoring.runner import InProcessRunner
from coop.scoring.sandbox import Sandbox, SandboxConfig
from coop.scoring.spec import InputRecord

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def member(records: int, seed: int = 0) -> list[InputRecord]:
    """Posts spread over a year, with reactions, like a busy Mastodon member."""
    return [
        InputRecord(
            ref=f"{seed:04d}{i:08d}",
            kind="post" if i % 5 else "activity",
            occurred_at=NOW - timedelta(hours=8.7 * i + seed),
            counts={"favourites": (i * 7) % 23, "reblogs": (i * 3) % 5, "replies": i % 4},
        )
        for i in range(records)
    ]


def scorer_objects() -> dict[str, Any]:
    """Load the reference scorers through their entry points (as the template does)."""
    found = {}
    for ep in importlib.metadata.entry_points(group="coop.scorers"):
        if ep.name in ("reach", "cadence"):
            found[ep.name] = ep.load()()
    return found


async def interleaved(steps: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    """Median seconds per call of each step, alternating them so machine noise hits all."""
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(runs + 1):
        for name, step in steps.items():
            started = time.perf_counter()
            result = step()
            if asyncio.iscoroutine(result):
                await result
            if i:  # the first round warms up
                samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


async def throughput(sandbox: Sandbox, name: str, members: list[list[InputRecord]]) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(sandbox.run(scorer=name, records=m, now=NOW) for m in members))
    return len(members) / (time.perf_counter() - started)


async def end_to_end(sandbox: Sandbox, runner: InProcessRunner, records: int, runs: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from _portability_setup import make_member, make_settings, open_db
    from tortoise import Tortoise

    from coop.jobs.scoring import ScoringFlow
    from coop.scoring import service

    vault = await open_db(make_settings())
    try:
        member_id = await make_member(vault, records)
        for name in ("reach", "cadence"):
            await service.enable_scorer(member_id=member_id, meta=runner.meta(name))
        flows = {"local": ScoringFlow(vault, runner), "boxed": ScoringFlow(vault, sandbox)}
        tick = iter(range(10**6))

        def recompute(flow: ScoringFlow) -> Any:
            # A minute later each time, so reach decays and a new score is stored.
            later = NOW + timedelta(minutes=next(tick))
            return flow.recompute_member(member_id=member_id, now=later)

        timings = await interleaved(
            {name: (lambda f=flow: recompute(f)) for name, flow in flows.items()}, runs
        )
        local, boxed = timings["local"], timings["boxed"]
        print(
            f"end to end (load {records} records, 2 scorers, store): in-process "
            f"{local * 1e3:6.2f} ms | sandboxed {boxed * 1e3:6.2f} ms | isolation cost "
            f"{boxed / local:4.2f}x (target <= 1.2x) | {1 / boxed:5.1f} members/s sandboxed"
        )
    finally:
        await Tortoise.close_connections()


async def main(records: int, runs: int, members: int) -> None:
    objects = scorer_objects()
    runner = InProcessRunner()
    for obj in objects.values():
        runner.add(obj)
    sandbox = Sandbox(SandboxConfig(allow=tuple(objects), require_isolation=False))
    await sandbox.start()
    iso = sandbox.isolation
    print(
        f"isolation: view={iso.view} netns={iso.netns} private_scratch={iso.mountns} "
        f"uid_drop={iso.uid_drop}; "
        f"{records} records per member; medians of {runs} runs"
    )
    data = member(records)
    crowd = [member(records, seed) for seed in range(members)]
    try:
        for name, obj in sorted(objects.items()):
            timings = await interleaved(
                {
                    "raw": lambda o=obj: o.score(data, NOW),
                    "local": lambda n=name: runner.run_sync(scorer=n, records=data, now=NOW),
                    "boxed": lambda n=name: sandbox.run(scorer=n, records=data, now=NOW),
                },
                runs,
            )
            raw, local, boxed = timings["raw"], timings["local"], timings["boxed"]
            in_process_rate = 1 / local
            boxed_rate = await throughput(sandbox, name, crowd)
            print(
                f"{name:8} raw {raw * 1e3:6.2f} ms | in-process {local * 1e3:6.2f} ms | "
                f"sandboxed {boxed * 1e3:6.2f} ms | isolation cost {boxed / local:4.2f}x "
                f"(target <= 1.2x) | vs raw {boxed / raw:4.1f}x"
            )
            print(
                f"{'':8} members/s: sandboxed {boxed_rate:6.1f} "
                f"({sandbox.config.parallel} at once) | in-process {in_process_rate:6.1f} "
                f"(one core) | ratio {in_process_rate / boxed_rate:4.2f}x"
            )
        await fixed_cost(sandbox, runner, runs)
        await end_to_end(sandbox, runner, records, runs)
    finally:
        await sandbox.close()


async def fixed_cost(sandbox: Sandbox, runner: InProcessRunner, runs: int) -> None:
    """A one-record run (so the scorer's own work is nil), with and without bubblewrap's
    reduced view: what a locked-down child costs, and what the view adds to it."""
    bare = Sandbox(replace(sandbox.config, view="off"))
    await bare.start()
    one = member(1)
    try:
        timings = await interleaved(
            {
                "local": lambda: runner.run_sync(scorer="reach", records=one, now=NOW),
                "view": lambda: sandbox.run(scorer="reach", records=one, now=NOW),
                "bare": lambda: bare.run(scorer="reach", records=one, now=NOW),
            },
            runs,
        )
    finally:
        await bare.close()
    local, view, no_view = timings["local"], timings["view"], timings["bare"]
    print(
        f"one record (reach): in-process {local * 1e3:6.2f} ms | sandboxed {view * 1e3:6.2f} ms "
        f"(fixed cost {(view - local) * 1e3:5.2f} ms) | same child without the reduced view "
        f"{no_view * 1e3:6.2f} ms | view/no view {view / no_view:4.2f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--members", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.records, args.runs, args.members))

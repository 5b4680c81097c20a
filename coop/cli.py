"""The `coop` command line. Bad arguments exit 2 with one line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

from tortoise.exceptions import DBConnectionError

from coop.config import Settings
from coop.errors import CoopError, InvalidInputError

Handler = Callable[[argparse.Namespace, Settings], int]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


async def with_db(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run `work` with tortoise initialised on the configured database. On SQLite the
    command counts as one of the data folder's live processes (coop.jobs.leader): runs it
    claims (`coop dev` syncs its sample) are never released by a `coop serve` starting now."""
    from tortoise import Tortoise

    from coop.db import ensure_data_dir, tortoise_config
    from coop.jobs.leader import processes_lock_for

    ensure_data_dir(settings)
    processes = processes_lock_for(settings.data_dir)
    if settings.is_sqlite:
        await processes.attend()
    try:
        await Tortoise.init(config=tortoise_config(settings))
        try:
            return await work()
        finally:
            await Tortoise.close_connections()
    finally:
        processes.release()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import os

    import uvicorn

    from coop.app import build_app
    from coop.config import SERVE_NO_JOBS
    from coop.logs import configure_logging

    settings = settings.served_at(args.host, args.port)
    configure_logging(settings)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "proxy_headers": False,
        "server_header": False,
        "log_config": None,
    }
    if args.workers == 1:
        uvicorn.run(build_app(settings, run_jobs=not args.no_jobs), workers=1, **options)
        return 0
    # Several web processes: uvicorn starts each one from the environment, which therefore
    # carries the advertised address and --no-jobs.
    os.environ["COOP_ISSUER"] = settings.issuer
    os.environ[SERVE_NO_JOBS] = "1" if args.no_jobs else "0"
    uvicorn.run("coop.app:served_app", factory=True, workers=args.workers, **options)
    return 0


def _dev_settings(args: argparse.Namespace, settings: Settings) -> tuple[Settings, Settings]:
    """The settings as configured (with --data-dir), and the dev server's: dev keys, loopback
    feeds allowed, the issuer derived from where it listens."""
    import ipaddress
    from dataclasses import replace

    from coop.errors import ConfigError

    base = settings
    if args.data_dir:
        base = Settings.from_env({**settings.extra, "COOP_DATA_DIR": args.data_dir})
    loopback = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    dev = replace(base, dev=True, outbound_allow=(*base.outbound_allow, *loopback))
    try:
        dev = replace(dev, issuer_configured=False).served_at(args.host, args.port)
    except ConfigError:
        if not base.issuer_configured:
            raise
    return base, dev


def _refuse_real_members(base: Settings) -> None:
    """Outside a dev configuration (COOP_DEV unset), refuse a database that holds members
    other than the sample one: an operator must not get a sample member in production."""
    from tortoise.exceptions import OperationalError

    from coop.errors import ConfigError
    from coop.jobs import sample
    from coop.vault import Vault
    from coop.vault.keyring import load_keyring, load_secret_key

    if base.dev:
        return
    try:  # the sample member is found by its blind index, only where the keys already are
        vault: Any = Vault(load_keyring(base), load_secret_key(base))
    except ConfigError:
        vault = None

    async def others() -> int:
        try:
            return await sample.count_other_members(vault)
        except OperationalError:  # not migrated yet: no member at all
            return 0

    found = asyncio.run(with_db(base, others))
    if found:
        raise InvalidInputError(
            f"refusing to run: {base.database_url.split('@')[-1]} holds {found} member(s) and "
            "COOP_DEV is not set (coop dev adds a sample member); use an empty --data-dir"
        )


def _seed_sample(dev: Settings) -> tuple[Any, list[Any]]:
    from coop.app import build_runtime
    from coop.jobs import sample
    from coop.jobs import sync as sync_jobs
    from coop.jobs.scoring import ScoringFlow
    from coop.scoring import service as scoring
    from coop.scoring.sandbox import Sandbox, SandboxConfig

    runtime = build_runtime(dev)

    async def work() -> tuple[Any, list[Any]]:
        await runtime.vault.check_keyring()
        jobs = sync_jobs.setup(dev, runtime.vault)
        flow = ScoringFlow(vault=runtime.vault, runner=Sandbox(SandboxConfig.from_settings(dev)))
        try:
            seeded = await sample.seed(vault=runtime.vault, jobs=jobs, flow=flow)
        finally:
            await flow.close()
            await jobs.queue.close()
        scores = await scoring.list_current_scores(vault=runtime.vault, member_id=seeded.member_id)
        return seeded, scores

    result: tuple[Any, list[Any]] = asyncio.run(with_db(dev, work))
    return result


def _print_sample(dev: Settings, seeded: Any, scores: list[Any]) -> None:
    values = {s.scorer: s.value for s in scores}
    print(f"coop dev: {dev.issuer}/ (data in {dev.data_dir})")
    print(f"  log in as {seeded.email} with the password {seeded.password}")
    new = "created" if seeded.created else "reused"
    print(f"  sample member {new}: {seeded.posts} sample posts, every installed scorer enabled")
    for outcome in seeded.outcomes:
        if outcome.scorer in values:
            print(f"  {outcome.scorer}: {values[outcome.scorer]:g} ({outcome.status})")
        else:
            why = outcome.code or outcome.status
            print(f"  {outcome.scorer}: no score ({why}; try `coop plugins run {outcome.scorer}`)")
        for kind in outcome.unfed:
            print(
                f"  warning: {outcome.scorer} reads {kind} records but the sample member has none"
            )
    if not seeded.outcomes:
        print("  no scorer installed: pip install -e your plugin, then run coop dev again")
    sys.stdout.flush()


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from coop.app import build_app
    from coop.db import migrate
    from coop.logs import configure_logging

    base, dev = _dev_settings(args, settings)
    _refuse_real_members(base)
    asyncio.run(migrate(dev))
    seeded, scores = _seed_sample(dev)
    _print_sample(dev, seeded, scores)
    configure_logging(dev)
    uvicorn.run(
        build_app(dev),
        host=args.host,
        port=args.port,
        proxy_headers=False,
        server_header=False,
        log_config=None,
    )
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from coop.app import run_worker
    from coop.logs import configure_logging

    if settings.is_sqlite:
        raise CoopError(
            "coop worker needs PostgreSQL (COOP_DATABASE_URL=postgres://…): on the embedded "
            "SQLite default, coop serve runs the background jobs itself",
            code="config_error",
        )
    configure_logging(settings)
    asyncio.run(run_worker(settings, concurrency=args.concurrency))
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from coop.db import migrate

    asyncio.run(migrate(settings))
    if not settings.is_sqlite:
        from coop.jobs.pgqueue import apply_schema

        if asyncio.run(apply_schema(settings)):
            print("job queue tables created")
    print("migrations applied")
    return 0


def cmd_makemigrations(args: argparse.Namespace, settings: Settings) -> int:
    from coop.db import make_migrations

    paths = asyncio.run(make_migrations(settings, args.name))
    for path in paths:
        print(f"created {path}")
    if not paths:
        print("no model changes")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from coop.app import build_runtime

    runtime = build_runtime(settings)

    async def work() -> Any:
        await runtime.vault.check_keyring()
        return await runtime.vault.rotate(new_kek=not args.rewrap_only)

    report = asyncio.run(with_db(settings, work))
    if report.resumed:
        print(f"resuming an interrupted rotation to {report.active_kek}")
    print(
        f"re-wrapped {report.rewrapped} member keys under {report.active_kek}; "
        f"{report.remaining} remaining"
        + (f"; retired {', '.join(report.retired)}" if report.retired else "")
    )
    if not runtime.vault.keyring.is_file_backed and not args.rewrap_only:
        print(
            "note: a COOP_MASTER_KEY keyring rotates by putting a new entry first "
            "(`coop keys generate`), then `coop keys rotate --rewrap-only`",
            file=sys.stderr,
        )
    return 0 if report.remaining == 0 else 1


def cmd_keys_generate(args: argparse.Namespace, settings: Settings) -> int:
    from coop.vault.keyring import generate_master_key

    print(generate_master_key())
    return 0


def cmd_export_schema(args: argparse.Namespace, settings: Settings) -> int:
    from coop.api.schema import schema

    print(schema.as_str())
    return 0


def _terms_of(args: argparse.Namespace) -> Any:
    from coop.apps.terms import score_purposes_from_lines, validate_terms

    return validate_terms(
        purpose=args.purpose,
        score_purposes=score_purposes_from_lines(args.score_purpose or []),
        retention_days=args.retention_days,
        policy_uri=args.policy_uri,
    )


def cmd_app_create(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from coop.app import build_runtime
    from coop.apps.service import create_app

    terms = _terms_of(args)
    # The webhook secret is derived from the server secret: only then are the keys needed.
    vault = build_runtime(settings).vault if args.webhook_url else None

    async def work() -> Any:
        return await create_app(
            name=args.name,
            redirect_uris=args.redirect_uri,
            public=args.public,
            homepage=args.homepage,
            webhook_url=args.webhook_url,
            vault=vault,
            terms=terms,
            score_notices=args.score_notices,
        )

    registered = asyncio.run(with_db(settings, work))
    print(json.dumps(registered.client_information(), indent=2))
    return 0


def cmd_app_set_terms(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from coop.apps.service import change_terms

    terms = _terms_of(args)

    async def work() -> Any:
        return await change_terms(terms=terms, client_id=args.client_id)

    stored = asyncio.run(with_db(settings, work))
    body = {"client_id": args.client_id, "terms_version": stored.version, **stored.metadata()}
    print(json.dumps(body, indent=2))
    return 0


def _add_terms_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--purpose", help="why the app wants members' data (<= 500 characters)")
    parser.add_argument(
        "--score-purpose",
        action="append",
        metavar="SCORER:TEXT",
        help="why it wants one score, e.g. 'reach: to rank posts' (repeatable)",
    )
    parser.add_argument(
        "--retention-days", help="days the app keeps what it reads (0: it does not keep it)"
    )
    parser.add_argument("--policy-uri", help="the app's privacy policy or terms (http(s) URL)")


def cmd_app_rotate_webhook_secret(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from coop.app import build_runtime
    from coop.apps.service import rotate_webhook_secret

    vault = build_runtime(settings).vault

    async def work() -> str:
        return await rotate_webhook_secret(vault=vault, client_id=args.client_id)

    secret = asyncio.run(with_db(settings, work))
    print(json.dumps({"client_id": args.client_id, "webhook_secret": secret}, indent=2))
    return 0


def _read_json(path: str, what: str) -> Any:
    import json
    from pathlib import Path

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not JSON"
        raise InvalidInputError(f"cannot read {what} {path}: {reason}") from None


def cmd_receipt_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0: every receipt in FILE is valid; 1: one is not; 2: FILE is not receipts."""
    from coop.portability.consent_receipts import BadReceiptFile, verify_receipt

    document = _read_json(args.file, "receipt file")
    keys = _read_json(args.keys, "key set") if args.keys else None
    documents = document if isinstance(document, list) else [document]
    try:
        results = [verify_receipt(d, keys=keys) for d in documents]
    except BadReceiptFile as exc:
        raise InvalidInputError(f"{args.file}: {exc}") from None
    if not results:
        raise InvalidInputError(f"{args.file}: holds no receipt")
    failed = [why for ok, why in results if not ok]
    if failed:
        print(f"invalid: {failed[0]}")
        return 1
    print("valid: " + (results[0][1] if len(results) == 1 else f"{len(results)} receipts"))
    return 0


def cmd_receipt_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    from coop.app import build_runtime

    vault = build_runtime(settings).vault
    key = asyncio.run(with_db(settings, vault.rotate_receipt_key))
    print(
        f"receipts are now signed with {key.kid} (generation {key.generation}); "
        "earlier keys stay published"
    )
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from coop.portability import backup

    out = Path(args.out)
    engine = asyncio.run(backup.backup(settings=settings, out=out))
    print(f"backed up {engine} database {backup.describe(settings)} to {out}")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from coop.app import build_runtime
    from coop.portability import backup

    runtime = build_runtime(settings)
    report = asyncio.run(
        backup.restore(vault=runtime.vault, settings=settings, source=Path(args.file))
    )
    print(
        f"restored {report.engine} backup {args.file}; deletion ledger re-applied "
        f"({report.ledger_entries} entries, {report.reapplied} erased members removed again)"
    )
    return 0


def _run_history(settings: Settings) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Unversioned changes by scorer, and each scorer's runs of the last 24 hours, from the
    database (none when it cannot be read: the plugin table is still worth printing)."""
    from coop.scoring import drift, health

    async def read() -> tuple[list[Any], dict[str, Any]]:
        return await drift.list_all(), await health.recent()

    try:
        found, recent = asyncio.run(with_db(settings, read))
    except Exception:
        return {}, {}
    by_scorer: dict[str, list[Any]] = {}
    for item in found:
        by_scorer.setdefault(item.scorer, []).append(item)
    return by_scorer, recent


def _warnings(p: Any, drifts: list[Any], runs: Any) -> list[str]:
    found = []
    if p.meta and p.meta.version != p.entry.dist_version:
        # The class version rules: members consent to it and every score records it.
        found.append(
            f"WARNING: class version {p.meta.version} differs from distribution "
            f"version {p.entry.dist_version}; members see {p.meta.version} (bump both together)"
        )
    if runs is not None and p.meta:
        found += runs.unfed_lines(p.meta.reads)
    return found + [item.warning() for item in drifts]


def _status(p: Any, runs: Any) -> str:
    """`failing` for a loaded scorer whose recent runs failed; else what loading said."""
    return "failing" if p.status == "loaded" and runs is not None and runs.failures else p.status


def _runs_json(runs: Any) -> dict[str, Any]:
    if runs is None:
        return {"last_24h": 0, "failures": 0, "last_failure": None}
    last = None
    if runs.failures:
        last = {
            "at": runs.last_failure_at.isoformat() if runs.last_failure_at else None,
            "what": runs.last_failure,
            "version": runs.last_failure_version,
        }
    return {"last_24h": runs.runs, "failures": runs.failures, "last_failure": last}


def _reads_line(meta: Any) -> str:
    """`reads post (fields occurred_at, network), repository`: the declared fields of a kind
    after it, a kind read whole alone."""
    fields = dict(meta.fields)
    kinds = [f"{k} (fields {', '.join(fields[k])})" if k in fields else k for k in meta.reads]
    return f"reads {', '.join(kinds)}"


def cmd_plugins_list(args: argparse.Namespace, settings: Settings) -> int:
    from coop.scoring.sandbox import Sandbox, SandboxConfig

    logging.getLogger("coop.scoring").setLevel(logging.ERROR)  # the table says it all

    async def work() -> Sandbox:
        sandbox = Sandbox(SandboxConfig.from_settings(settings))
        try:
            await sandbox.start()
        finally:
            await sandbox.close()
        return sandbox

    sandbox = asyncio.run(work())
    drifts, recent = _run_history(settings)
    statuses = {p.entry.name: _status(p, recent.get(p.entry.name)) for p in sandbox.plugins}
    failed = any(status in ("failed", "failing") for status in statuses.values())
    if args.json:
        import json
        from dataclasses import asdict

        isolation = asdict(sandbox.isolation)
        rows = [
            {
                "name": p.entry.name,
                "status": statuses[p.entry.name],
                "reason": p.reason,
                "distribution": p.entry.dist,
                "version": p.entry.dist_version,
                "sha256": p.entry.content_sha256,
                "editable": not p.entry.content_sha256,
                "record_sha256": p.entry.record_sha256,
                "reads": list(p.meta.reads) if p.meta else [],
                # kinds read with only some fields; a kind of `reads` not here: all fields
                "fields": {k: list(f) for k, f in p.meta.fields} if p.meta else {},
                "runs": _runs_json(recent.get(p.entry.name)),
                "warnings": _warnings(p, drifts.get(p.entry.name, []), recent.get(p.entry.name)),
            }
            for p in sandbox.plugins
        ]
        print(json.dumps({"plugins": rows, "isolation": isolation}, indent=2))
        return 1 if failed else 0
    print(f"{'SCORER':<16} {'STATUS':<12} {'DISTRIBUTION':<28} {'VERSION':<10} SHA256")
    for p in sandbox.plugins:
        e = p.entry
        runs = recent.get(e.name)
        status = statuses[e.name]
        digest = e.content_sha256 or "(editable install: no content hash)"
        print(f"{e.name:<16} {status:<12} {e.dist:<28} {e.dist_version:<10} {digest}")
        detail = _reads_line(p.meta) if p.meta else p.reason
        print(f"{'':<16} {detail}")
        if status == "failing" and runs is not None:
            print(f"{'':<16} {runs.failure_line()}")
        for warning in _warnings(p, drifts.get(e.name, []), runs):
            print(f"{'':<16} {warning}")
    if not sandbox.plugins:
        print("no scorer plugins installed (entry point group coop.scorers)")
    iso = sandbox.isolation

    def yes(flag: bool) -> str:
        return "yes" if flag else "NO"

    print(
        f"isolation: reduced filesystem view (bubblewrap) {yes(iso.view)}, "
        f"network namespace {yes(iso.netns)}, private scratch {yes(iso.mountns)}, "
        f"unprivileged uid {yes(iso.uid_drop)}"
    )
    return 1 if failed else 0


def cmd_plugins_run(args: argparse.Namespace, settings: Settings) -> int:
    import json
    from pathlib import Path

    from coop.errors import ScorerError
    from coop.scoring import tryout
    from coop.scoring.sandbox import SandboxConfig

    logging.getLogger("coop.scoring").setLevel(logging.ERROR)  # the error is printed below
    now = tryout.parse_now(args.now)
    records = tryout.load_records(Path(args.records))
    config = SandboxConfig.from_settings(settings)
    try:
        result, unfed = asyncio.run(
            tryout.run_once(config, scorer=args.name, records=records, now=now)
        )
    except ScorerError as exc:
        print(f"coop: {exc.code}: {exc.message}", file=sys.stderr)
        failure = exc.failure or {}
        if failure:
            print(f"{failure.get('type')}: {failure.get('message')}", file=sys.stderr)
            for file, line, function, source in failure.get("frames") or []:
                print(f'  File "{file}", line {line}, in {function}', file=sys.stderr)
                print(f"    {source}", file=sys.stderr)
        return 1
    for kind in unfed:
        print(f"warning: {args.name} reads {kind} records but the file has none", file=sys.stderr)
    print(json.dumps(tryout.result_json(result), indent=2))
    return 0


def cmd_plugins_hash(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from coop.scoring import disthash, registry
    from coop.scoring.sandbox import SandboxConfig

    given = Path(args.target)
    if given.suffix == ".whl":
        import zipfile

        if not given.is_file():
            raise InvalidInputError(f"{given} is not a file")
        try:
            print(f"{disthash.wheel_hash(given)}  {given.name}")
        except (zipfile.BadZipFile, OSError):
            raise InvalidInputError(f"{given} is not a readable wheel") from None
        return 0
    paths = SandboxConfig.from_settings(settings).plugin_path
    dist = registry.find_distribution(args.target, paths=paths)
    if dist is None:
        raise InvalidInputError(f"no installed distribution or scorer named {args.target!r}")
    label = f"{dist.metadata['Name']} {dist.version}"
    digest = disthash.installed_hash(dist)
    if not digest:
        raise InvalidInputError(f"{label} is an editable install: it has no content hash")
    print(f"{digest}  {label}")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from coop.errors import SandboxUnavailableError
    from coop.scoring import verify
    from coop.scoring.sandbox import SandboxConfig

    logging.getLogger("coop.scoring").setLevel(logging.ERROR)  # the verdicts say it all
    bundles = verify.load(Path(args.path))
    try:
        verdicts = asyncio.run(verify.verify(SandboxConfig.from_settings(settings), bundles))
    except SandboxUnavailableError as exc:
        print(f"coop: {exc.message}", file=sys.stderr)
        return 1
    for verdict in verdicts:
        print(verdict.line)
    return 0 if all(v.reproduced for v in verdicts) else 1


def cmd_plugins_new(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from coop.scoring.scaffold import scaffold

    root = scaffold(args.name, Path.cwd())
    print(f'created {root}: pip install -e "{root.name}[test]" && pytest {root.name}/tests')
    return 0


def _proposal_line(p: Any) -> str:
    t = p.tally
    votes = f"yes {t.yes}, no {t.no}, abstain {t.abstain} of {t.eligible}"
    what = f"{p.kind:<8} {p.scorer} {p.version}"
    if p.is_open:
        return f"{p.id}  open    {what}  until {p.closes_at:%Y-%m-%d %H:%M}Z  {votes}"
    return f"{p.id}  closed  {what}  {p.outcome}  {votes}"


def _proposal_id(text: str) -> Any:
    import uuid

    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInputError(
            f"{text!r} is not a proposal id (see `coop proposals list`)"
        ) from None


def cmd_proposals_list(args: argparse.Namespace, settings: Settings) -> int:
    from coop.governance import service as governance

    found = asyncio.run(with_db(settings, lambda: governance.list_proposals(state=args.state)))
    if args.json:
        import json

        rows = [
            {
                "id": str(p.id),
                "kind": p.kind,
                "scorer": p.scorer,
                "version": p.version,
                "previous_version": p.previous_version,
                "state": p.state,
                "opened_by": p.opened_by,
                "opened_at": p.opened_at.isoformat(),
                "closes_at": p.closes_at.isoformat(),
                "closed_at": p.closed_at.isoformat() if p.closed_at else None,
                "outcome": p.outcome,
                "tally": {"yes": p.tally.yes, "no": p.tally.no, "abstain": p.tally.abstain},
                "eligible": p.tally.eligible,
                "rules": p.rules.to_json(),
                "distribution_hash": p.distribution_hash,
            }
            for p in found
        ]
        print(json.dumps({"governance": settings.governance, "proposals": rows}, indent=2))
        return 0
    if not settings.governance:
        print("governance is off (COOP_GOVERNANCE): every installed scorer is offered")
    for p in found:
        print(_proposal_line(p))
    if not found:
        print("no proposals")
    return 0


def cmd_proposals_open(args: argparse.Namespace, settings: Settings) -> int:
    from coop.app import build_runtime
    from coop.errors import GovernanceOffError
    from coop.governance import service as governance
    from coop.jobs.scoring import flow_for
    from coop.jobs.statistics import preview_statistics

    if not settings.governance:
        raise GovernanceOffError(
            "Governance is off: set COOP_GOVERNANCE=1 first (docs/governance.md)."
        )
    logging.getLogger("coop.scoring").setLevel(logging.ERROR)
    runtime = build_runtime(settings)

    async def work() -> Any:
        flow = flow_for(runtime)
        try:
            metas = {m.name: m for m in await flow.installed()}
            meta = metas.get(args.scorer)
            if meta is None:
                raise InvalidInputError(
                    f"no scorer named {args.scorer!r} is installed and loaded "
                    "(see `coop plugins list`)",
                    code="scorer_unavailable",
                )
            if args.version and args.version != meta.version and not args.retire:
                raise InvalidInputError(
                    f"{args.scorer} {args.version} is not installed (installed: {meta.version})",
                    code="scorer_unavailable",
                )
            await governance.record_baseline(metas=list(metas.values()))
            opened = await governance.open_proposal(
                vault=runtime.vault,
                meta=meta,
                rules=flow.rules,
                retire=args.retire,
                distribution_hash=flow.distribution_hash(meta.name),
            )
            await preview_statistics(
                flow=flow, proposal_id=opened.id, minimum=settings.governance_min_sharers
            )
            return await governance.get_proposal(proposal_id=opened.id)
        finally:
            await flow.close()

    opened = asyncio.run(with_db(settings, work))
    print(
        f"opened {opened.id}: {opened.kind} {opened.scorer} {opened.version}, voting until "
        f"{opened.closes_at:%Y-%m-%d %H:%M}Z, {opened.tally.eligible} members on the roll"
    )
    shared = opened.statistics
    if shared:
        shown = "shown" if shared.get("shown") else f"not shown (fewer than {shared['minimum']})"
        print(f"preview statistics from {shared['sharers']} sharing members: {shown}")
    return 0


def cmd_proposals_close(args: argparse.Namespace, settings: Settings) -> int:
    from coop.jobs import governance as governance_flow

    if args.due == bool(args.id):
        raise InvalidInputError("give a proposal id or --due (not both)")

    async def work() -> list[Any]:
        if args.due:
            return await governance_flow.close_due()
        return [await governance_flow.close_proposal(proposal_id=_proposal_id(args.id))]

    for closed in asyncio.run(with_db(settings, work)):
        rules = closed.rules
        print(f"{_proposal_line(closed)} (quorum {rules.quorum}%, majority over {rules.majority}%)")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 256")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="coop", description="coop: a consent-first data cooperative server")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = sub.add_parser("serve", help="serve coop over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=_positive, default=1, help="web processes to run (default 1)"
    )
    serve.add_argument(
        "--no-jobs",
        action="store_true",
        help="run no background work here (web machines; `coop worker` runs the jobs)",
    )
    serve.set_defaults(handler=cmd_serve)

    dev = sub.add_parser(
        "dev",
        help="a dev server for plugin authors: migrate, dev keys, a sample member scored by "
        "every installed scorer, then serve",
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--data-dir", help="where its SQLite file and dev keys live (COOP_DATA_DIR)")
    dev.set_defaults(handler=cmd_dev)

    worker = sub.add_parser(
        "worker", help="run background jobs only (syncs, scoring, notices; PostgreSQL)"
    )
    worker.add_argument("--concurrency", type=_positive, default=4, help="jobs at once (default 4)")
    worker.set_defaults(handler=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(handler=cmd_migrate)

    makemigrations = sub.add_parser(
        "makemigrations", help="(developers) write migrations for model changes"
    )
    makemigrations.add_argument("--name", help="a short name for the migration")
    makemigrations.set_defaults(handler=cmd_makemigrations)

    export_schema = sub.add_parser("export-schema", help="print the GraphQL SDL")
    export_schema.set_defaults(handler=cmd_export_schema)

    app = sub.add_parser("app", help="manage third-party apps (OAuth clients)")
    app_sub = app.add_subparsers(dest="app_command", required=True, parser_class=_Parser)
    app_create = app_sub.add_parser(
        "create", help="register an app; prints RFC 7591 client information (secret shown once)"
    )
    app_create.add_argument("--name", required=True)
    app_create.add_argument(
        "--redirect-uri", required=True, action="append", help="exact redirect URI (repeatable)"
    )
    app_create.add_argument(
        "--public", action="store_true", help="a public client (native/browser app, no secret)"
    )
    app_create.add_argument("--homepage")
    app_create.add_argument(
        "--webhook-url", help="signed deletion notices are POSTed here (prints a webhook_secret)"
    )
    app_create.add_argument(
        "--score-notices",
        action="store_true",
        help="also POST signed score-change notices to --webhook-url (no values, docs/apps.md)",
    )
    _add_terms_arguments(app_create)
    app_create.set_defaults(handler=cmd_app_create)
    app_terms = app_sub.add_parser(
        "set-terms",
        help="declare an app's new purpose/retention/policy (members must agree again)",
    )
    app_terms.add_argument("--client-id", required=True)
    _add_terms_arguments(app_terms)
    app_terms.set_defaults(handler=cmd_app_set_terms)
    app_rotate = app_sub.add_parser(
        "rotate-webhook-secret",
        help="give an app a new webhook signing secret (printed once; the old one stops working)",
    )
    app_rotate.add_argument("--client-id", required=True)
    app_rotate.set_defaults(handler=cmd_app_rotate_webhook_secret)

    receipt = sub.add_parser("receipt", help="consent receipts")
    receipt_sub = receipt.add_subparsers(
        dest="receipt_command", required=True, parser_class=_Parser
    )
    verify = receipt_sub.add_parser(
        "verify",
        help="check a signed consent receipt offline (exit 0 valid, 1 invalid, 2 bad file)",
    )
    verify.add_argument("file", help="a receipt (or consent_receipts.json from an export)")
    verify.add_argument(
        "--keys", help="the cooperative's published key set (/.well-known/coop-receipt-keys)"
    )
    verify.set_defaults(handler=cmd_receipt_verify)
    rotate_receipt = receipt_sub.add_parser(
        "rotate-key", help="sign receipts with a new key from now on (old keys stay published)"
    )
    rotate_receipt.set_defaults(handler=cmd_receipt_rotate_key)

    keys = sub.add_parser("keys", help="manage key-encryption keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, parser_class=_Parser)
    rotate = keys_sub.add_parser("rotate", help="re-wrap every member key under a new KEK")
    rotate.add_argument(
        "--rewrap-only",
        action="store_true",
        help="do not generate a key; re-wrap under the active one (COOP_MASTER_KEY's first)",
    )
    rotate.set_defaults(handler=cmd_keys_rotate)
    generate = keys_sub.add_parser("generate", help="print a new id:key for COOP_MASTER_KEY")
    generate.set_defaults(handler=cmd_keys_generate)
    backup_cmd = sub.add_parser("backup", help="write a database backup to a file")
    backup_cmd.add_argument("--out", required=True, help="the backup file to write (mode 0600)")
    backup_cmd.set_defaults(handler=cmd_backup)
    restore_cmd = sub.add_parser(
        "restore", help="restore a backup, then re-apply the deletion ledger (stop the server)"
    )
    restore_cmd.add_argument("file", help="a file written by `coop backup`")
    restore_cmd.set_defaults(handler=cmd_restore)
    verify_cmd = sub.add_parser(
        "verify",
        help="re-run the scorer of each proof bundle (a bundle file or an export ZIP) in the "
        "sandbox; exit 0 only when every score reproduced",
    )
    verify_cmd.add_argument("path", metavar="PATH", help="a proof bundle or a member's export ZIP")
    verify_cmd.set_defaults(handler=cmd_verify)

    plugins = sub.add_parser("plugins", help="scorer plugins")
    plugins_sub = plugins.add_subparsers(
        dest="plugins_command", required=True, parser_class=_Parser
    )
    plugins_list = plugins_sub.add_parser(
        "list",
        help="installed scorers: loaded, not allowed or failed (and why); exit 1 if any failed",
    )
    plugins_list.add_argument("--json", action="store_true", help="print JSON, not a table")
    plugins_list.set_defaults(handler=cmd_plugins_list)
    plugins_run = plugins_sub.add_parser(
        "run", help="run an installed scorer in the sandbox on records from a JSON file"
    )
    plugins_run.add_argument("name", help="the scorer's entry point name")
    plugins_run.add_argument(
        "--records", required=True, help="a JSON list of {kind, occurred_at, counts, ...}"
    )
    plugins_run.add_argument("--now", help="the run's time (ISO 8601; default: now, UTC)")
    plugins_run.set_defaults(handler=cmd_plugins_run)
    plugins_hash = plugins_sub.add_parser(
        "hash",
        help="print the content hash of a wheel file or of an installed distribution "
        "(the value to pin in COOP_PLUGINS)",
    )
    plugins_hash.add_argument(
        "target", metavar="WHEEL_OR_NAME", help="a .whl file, a distribution or a scorer name"
    )
    plugins_hash.set_defaults(handler=cmd_plugins_hash)
    plugins_new = plugins_sub.add_parser(
        "new", help="scaffold a scorer plugin distribution in the current folder"
    )
    plugins_new.add_argument("name", help="the scorer name, e.g. consistency")
    plugins_new.set_defaults(handler=cmd_plugins_new)
    _add_proposals(sub)
    return parser


def _add_proposals(sub: Any) -> None:
    proposals = sub.add_parser("proposals", help="the members' votes on scorers (governance)")
    proposals_sub = proposals.add_subparsers(
        dest="proposals_command", required=True, parser_class=_Parser
    )
    listed = proposals_sub.add_parser("list", help="open proposals, then closed ones")
    listed.add_argument("--state", choices=["open", "closed"], help="only these")
    listed.add_argument("--json", action="store_true", help="print JSON, not lines")
    listed.set_defaults(handler=cmd_proposals_list)
    opened = proposals_sub.add_parser(
        "open", help="put an installed scorer (version) to the members' vote, or its retirement"
    )
    opened.add_argument("scorer", metavar="SCORER", help="the scorer's name")
    opened.add_argument("--version", help="the installed version the vote is about")
    opened.add_argument("--retire", action="store_true", help="propose to retire the scorer")
    opened.set_defaults(handler=cmd_proposals_open)
    closed = proposals_sub.add_parser(
        "close", help="close a proposal whose voting period is over and apply its outcome"
    )
    closed.add_argument("id", nargs="?", metavar="ID", help="the proposal's id")
    closed.add_argument("--due", action="store_true", help="close every proposal that is due")
    closed.set_defaults(handler=cmd_proposals_close)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        handler: Handler = args.handler
        return handler(args, settings)
    except CoopError as exc:
        print(f"coop: {exc.message}", file=sys.stderr)
        return 2
    except (OSError, DBConnectionError) as exc:
        # An unreachable database or unreadable file: one line, not a traceback.
        print(f"coop: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig()
    sys.exit(main())

"""The scoring template process: `python -I -m coop.scoring.template --fd N`.

It starts inside bubblewrap's reduced view (coop/scoring/jail.py) and NEVER imports plugin
code: it preloads coop and the standard library, then forks children. Each child locks
itself down (new session, own network, IPC and mount namespaces, private scratch, rlimits,
scrubbed environment, a uid of its own, no_new_privs) and only then imports the one plugin it
runs: to read a plugin's declaration (a throw-away child per plugin, reported as data the
server validates), or to score one member (the template hands the child's socket to the
server, which writes the member's records to it directly). The template never sees member
data, and no plugin's code ever runs in a process that outlives one member's run.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import importlib
import json
import os
import selectors
import shutil
import signal
import socket
import sys
import traceback
from importlib.metadata import EntryPoint
from typing import Any

from coop.scoring import protocol, spec
from coop.scoring.lockdown import (
    ISOLATION_REFUSED,
    ChildIds,
    Config,
    leave_network,
    lock_down,
    probe_isolation,
)
from coop.scoring.validate import ContractViolation, ScorerMeta, check_contract, result_to_json

# Python's audit events for network use. Not the boundary (the namespaces are: these calls
# fail anyway); they let the host report a scorer that tried as `sandbox_violation`.
NETWORK_EVENTS = frozenset(
    {
        "socket.bind",
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyaddr",
        "socket.gethostbyname",
        "socket.sendmsg",
        "socket.sendto",
    }
)


# Standard-library modules scorers commonly import, preloaded once here (trusted code) so a
# child's import of its plugin costs little; children share them copy-on-write. Anything
# else a plugin imports (e.g. `_strptime` on first `strptime`) loads in the child.
PRELOAD = (
    "collections",
    "datetime",
    "decimal",
    "fractions",
    "functools",
    "itertools",
    "json",
    "math",
    "re",
    "statistics",
)


class _Watch:
    network = False


def _watch_network(event: str, args: tuple[Any, ...]) -> None:
    if event in NETWORK_EVENTS:
        _Watch.network = True


def _locked_down(cfg: Config) -> None:
    """Lock this fresh child down; exit if isolation is required and incomplete."""
    # A child lives for one run: collecting cycles would only touch (and copy) the
    # template's pages. Memory stays bounded by RLIMIT_AS.
    gc.disable()
    got = lock_down(cfg)
    if cfg.require_isolation and not (got["netns"] and got["mountns"] and got["uid_drop"]):
        os._exit(ISOLATION_REFUSED)
    sys.addaudithook(_watch_network)


def _entry_for(cfg: Config, scorer: str) -> dict[str, str]:
    # check_contract made each loaded scorer's name equal its entry point's name.
    return next(e for e in cfg.entry_points if e["name"] == scorer)


def _score(loaded: Any, raw: bytes) -> bytes:
    """Run the imported scorer (or report why it could not be imported) on one job."""
    _, now, records = protocol.decode_job(raw)
    try:
        if isinstance(loaded, BaseException):
            raise loaded
        body = b"R" + json.dumps(result_to_json(loaded.score(records, now))).encode()
    except BaseException as exc:  # the plugin failed: its type, message and its own frames
        body = b"E" + json.dumps(_failure(exc)).encode()
    if _Watch.network:
        body = b"V" + json.dumps({"what": "network"}).encode()
    return body


def _failure(exc: BaseException) -> dict[str, Any]:
    """What failed, for whoever debugs the plugin: the type, the message (bounded; the
    server never logs it) and the plugin's own traceback frames (file, line, function and
    source line of plugin code, never variable values)."""
    frames = [
        [f.filename[-200:], f.lineno, f.name[:100], (f.line or "").strip()[:200]]
        for f in traceback.extract_tb(exc.__traceback__)
        if "/coop/scoring/" not in f.filename
    ]
    return {"type": type(exc).__name__, "message": str(exc)[:500], "frames": frames[-20:]}


def _child_main(cfg: Config, sock: socket.socket, scorer: str) -> None:
    _locked_down(cfg)
    # Import the one plugin before the job arrives (off the critical path): this process
    # serves one member's run of this scorer and nothing else.
    loaded: Any
    try:
        loaded, _ = _load(_entry_for(cfg, scorer), cfg.import_timeout)
    except BaseException as exc:
        loaded = exc
    chunks = []
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    body = _score(loaded, b"".join(chunks))
    with contextlib.suppress(OSError):
        sock.sendall(body)
        # Close now: at exit the kernel tears down the address space and namespaces before
        # it closes descriptors, and the server waits for this EOF.
        sock.close()
    os._exit(0)


def _only_fd(keep: int) -> None:
    """In a fresh child: stdio to /dev/null, every descriptor but `keep` closed."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGALRM, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def _fork_child(cfg: Config, ids: ChildIds, scorer: str) -> tuple[int, socket.socket]:
    parent_end, child_end = socket.socketpair()
    slot = ids.take()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            _only_fd(child_end.fileno())
            _child_main(ids.child_config(cfg, slot), child_end, scorer)
        finally:
            os._exit(70)
    ids.live[pid] = slot
    child_end.close()
    return pid, parent_end


# -- reading declarations (each import in its own locked-down child) ----------------------


class _ImportTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _ImportTimeout()


def _load(entry: dict[str, str], timeout: int) -> tuple[Any, ScorerMeta]:
    """Import one entry point and check its contract (raises ContractViolation)."""
    ep = EntryPoint(name=entry["name"], value=entry["value"], group=spec.ENTRY_POINT_GROUP)
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(timeout)
    try:
        obj = ep.load()
        scorer = obj() if isinstance(obj, type) else obj
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return scorer, check_contract(scorer, entry_point_name=entry["name"])


def _declaration(cfg: Config, entry: dict[str, str]) -> dict[str, Any]:
    """In a locked-down child: import the plugin, report its declaration or why not."""
    try:
        _, meta = _load(entry, cfg.import_timeout)
        report: dict[str, Any] = {"meta": meta.to_json()}
    except ContractViolation as exc:
        report = {"reason": f"contract violation: {exc}"}
    except _ImportTimeout:
        report = {"reason": "import took too long"}
    except BaseException as exc:
        report = {"reason": f"import failed: {type(exc).__name__}"}
    if _Watch.network:
        report = {"reason": "sandbox violation: it tried to use the network"}
    return report


def _probe_load(cfg: Config, ids: ChildIds, entry: dict[str, str]) -> dict[str, Any]:
    """One plugin's declaration, read in a throw-away locked-down child."""
    read_end, write_end = os.pipe()
    slot = ids.take()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            _only_fd(write_end)
            cfg = ids.child_config(cfg, slot)
            _locked_down(cfg)
            os.write(write_end, json.dumps(_declaration(cfg, entry)).encode()[:65536])
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        raw = pipe.read(65537)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == ISOLATION_REFUSED:
        return {"reason": "not loaded: scorer isolation is unavailable"}
    if code != 0 or not raw:
        return {"reason": "import crashed the interpreter"}
    try:
        report: dict[str, Any] = json.loads(raw)
    except ValueError:
        return {"reason": "import failed: its report was unreadable"}
    return report


Reports = tuple[list[dict[str, Any]], list[dict[str, str]]]


def probe_scorers(cfg: Config, ids: ChildIds, *, allowed: bool) -> Reports:
    """Every entry's declaration (unvalidated: the server checks it) or why it failed."""
    for path in reversed(cfg.paths):
        if path and path not in sys.path:
            sys.path.insert(0, path)
    loaded: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    for entry in cfg.entry_points:
        report = (
            _probe_load(cfg, ids, entry)
            if allowed
            else {"reason": "not loaded: scorer isolation is unavailable"}
        )
        if "meta" in report:
            loaded.append({"entry": entry["name"], "meta": report["meta"]})
        else:
            failed.append({"entry": entry["name"], "reason": str(report.get("reason"))[:500]})
    return loaded, failed


# -- the template loop -----------------------------------------------------------------


class Template:
    def __init__(self, cfg: Config, ctl: socket.socket, ids: ChildIds, scorers: list[str]) -> None:
        self.cfg = cfg
        self.ctl = ctl
        self.ids = ids
        # Per scorer: children locked down ahead of time, its plugin already imported.
        self.pools: dict[str, list[tuple[int, socket.socket]]] = {n: [] for n in scorers}
        self.jobs: dict[int, int] = {}  # pid -> job id
        self.buffer = bytearray()
        self.idle_deaths = 0

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        data = protocol.frame(message)
        if fds:
            socket.send_fds(self.ctl, [data], fds)
        else:
            self.ctl.sendall(data)

    def fill_pools(self) -> None:
        """Keep `prefork` locked-down children waiting for each scorer."""
        for scorer, pool in self.pools.items():
            while len(pool) < self.cfg.prefork:
                pool.append(_fork_child(self.cfg, self.ids, scorer))

    def start_job(self, job_id: int, scorer: str) -> None:
        pool = self.pools.setdefault(scorer, [])
        if not pool:
            pool.append(_fork_child(self.cfg, self.ids, scorer))
        pid, sock = pool.pop(0)
        self.jobs[pid] = job_id
        self.send({"op": "started", "id": job_id, "pid": pid}, [sock.fileno()])
        sock.close()

    def kill_job(self, job_id: int) -> None:
        for pid, jid in self.jobs.items():
            if jid == job_id:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def reap(self) -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            pid = info.si_pid
            # The leader is a zombie, so its group id is still reserved: kill what it left.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            self.ids.live.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            if pid in self.jobs:
                cpu = round(usage.ru_utime + usage.ru_stime, 3)
                self.send({"op": "exit", "id": self.jobs.pop(pid), "code": code, "cpu": cpu})
            else:
                for pool in self.pools.values():
                    for entry in [e for e in pool if e[0] == pid]:
                        entry[1].close()
                        pool.remove(entry)
                self.idle_deaths += 1
                if self.idle_deaths > 5:  # something is wrong: stop pre-forking, fork per job
                    self.cfg.prefork = 0
                if code == ISOLATION_REFUSED:
                    self.send({"op": "refused"})
            # Without a private scratch mount the dir lives in the shared one: wipe it.
            shutil.rmtree(f"{self.cfg.scratch[0]}/coop-score-{pid}", ignore_errors=True)

    def handle(self, message: dict[str, Any]) -> None:
        if message["op"] == "job":
            self.start_job(int(message["id"]), str(message["scorer"]))
        elif message["op"] == "kill":
            self.kill_job(int(message["id"]))
        self.fill_pools()

    def serve(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        selector = selectors.DefaultSelector()
        selector.register(self.ctl, selectors.EVENT_READ, "ctl")
        selector.register(wake_r, selectors.EVENT_READ, "wake")
        self.fill_pools()
        while True:
            for key, _ in selector.select(timeout=1.0):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
                    continue
                chunk = self.ctl.recv(1 << 16)
                if not chunk:
                    self.shutdown()
                    return
                self.buffer.extend(chunk)
                for message in protocol.split_frames(self.buffer):
                    self.handle(message)
            self.reap()

    def _idle(self) -> list[int]:
        return [pid for pool in self.pools.values() for pid, _ in pool]

    def shutdown(self) -> None:
        for pid in [*self.jobs, *self._idle()]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for pid in [*self.jobs, *self._idle()]:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _read_frame(ctl: socket.socket) -> dict[str, Any]:
    buffer = bytearray()
    while True:
        chunk = ctl.recv(1 << 16)
        if not chunk:
            raise SystemExit(0)
        buffer.extend(chunk)
        frames = protocol.split_frames(buffer)
        if frames:
            return frames[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coop.scoring.template")
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    ctl = socket.socket(fileno=args.fd)
    cfg = Config(**_read_frame(ctl))
    # No network for the template either (bubblewrap already gave it an empty namespace; this
    # covers a template started without it).
    leave_network()
    isolation = probe_isolation(cfg)
    refused = cfg.require_isolation and not (cfg.view and all(isolation.values()))
    if refused:
        cfg.prefork = 0  # the server will refuse to run jobs: do not fork idle children
    for module in PRELOAD:
        importlib.import_module(module)
    # Without isolation no plugin is imported at all, not even to read its declaration.
    ids = ChildIds(cfg.id_slots)
    loaded, failed = probe_scorers(cfg, ids, allowed=not refused)
    gc.collect()
    gc.freeze()  # children share these pages copy-on-write: keep the collector off them
    ready = {"op": "ready", "loaded": loaded, "failed": failed, "isolation": isolation}
    ctl.sendall(protocol.frame(ready))
    try:
        Template(cfg, ctl, ids, [item["entry"] for item in loaded]).serve()
    except OSError as exc:
        if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
            traceback.print_exc()
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The host side of scorer isolation: start the template process (in bubblewrap's reduced
view, coop/scoring/jail.py), run one job per child.

`Sandbox.run(...)` sends the member's records straight to a freshly forked, already locked
down child (the template hands over the child's socket, never the data), reads at most
MAX_OUTPUT_BYTES back under a wall-clock timeout, and validates the output. Whatever a
plugin does, the caller gets a ScoreResult or a ScorerError; the template is restarted
when it dies. `InProcessRunner` is the unisolated twin for `coop.testing` and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from coop.errors import (
    SandboxUnavailableError,
    ScorerError,
    ScorerOutputError,
    ScorerTimeoutError,
    ScorerUnavailableError,
    ScorerViolationError,
)
from coop.scoring import jail, protocol
from coop.scoring.inputs import Distribution
from coop.scoring.registry import PluginEntry, discover
from coop.scoring.runner import InProcessRunner, Runner, validated
from coop.scoring.sandbox_config import SandboxConfig
from coop.scoring.spec import InputRecord, ScoreResult
from coop.scoring.validate import MAX_OUTPUT_BYTES, ContractViolation, ScorerMeta, reported_meta

log = logging.getLogger("coop.scoring")


@dataclass(frozen=True)
class PluginStatus:
    """One installed scorer as `coop plugins list` and the admin see it."""

    entry: PluginEntry
    status: str  # loaded | not_allowed | failed
    reason: str = ""
    meta: ScorerMeta | None = None


@dataclass
class Isolation:
    netns: bool = False
    mountns: bool = False
    uid_drop: bool = False
    view: bool = False  # the template runs in bubblewrap's reduced filesystem view

    @property
    def complete(self) -> bool:
        return self.netns and self.mountns and self.uid_drop and self.view


@dataclass
class _Job:
    started: asyncio.Future[tuple[int, int]]
    exited: asyncio.Future[tuple[int, float]]  # exit code, CPU seconds used


class Sandbox:
    """The isolated runner used by the server. Start once; `run` from any task."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.plugins: list[PluginStatus] = []
        self.isolation = Isolation()
        self._scorers: dict[str, ScorerMeta] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._ctl: socket.socket | None = None
        self._buffer = bytearray()
        self._fds: deque[int] = deque()
        self._jobs: dict[int, _Job] = {}
        self._next_id = 0
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._start_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(config.parallel)
        self.restarts = -1

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None and self._ctl is not None

    @property
    def running(self) -> int:
        """How many scorer children have started and not yet been reaped or abandoned."""
        return sum(1 for job in self._jobs.values() if job.started.done())

    async def start(self) -> None:
        async with self._start_lock:
            if not self.alive:
                await self._spawn()

    async def _spawn(self) -> None:
        self._teardown()
        entries = discover(allow=self.config.allow, paths=self.config.plugin_path)
        loop = asyncio.get_running_loop()
        try:  # off the event loop: it starts a throw-away interpreter to learn what to bind
            jailed = await asyncio.to_thread(self._jail, entries)
        except (OSError, subprocess.SubprocessError, ValueError):
            log.exception("scorer sandbox: cannot build the reduced view")
            raise SandboxUnavailableError("The scorer sandbox did not start.") from None
        ours, theirs = socket.socketpair()
        # -I: ignore PYTHON* variables and the user site.
        argv = [*jailed, sys.executable, "-I", "-m", "coop.scoring.template"]
        argv += ["--fd", str(theirs.fileno())]
        view = bool(jailed)
        # The template starts from a clean environment (never COOP_MASTER_KEY, database URLs
        # or any COOP_* setting) with the control socket as its only inherited descriptor.
        self._process = subprocess.Popen(  # noqa: S603, ASYNC220 - fixed argv, returns at once
            argv,
            pass_fds=(theirs.fileno(),),
            env={"PATH": jail.CLEAN_PATH, "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            # Its own pipe, not the server's stderr (which may be a log file).
            stderr=subprocess.PIPE,
            close_fds=True,
            start_new_session=True,
        )
        theirs.close()
        self._watch_stderr(loop)
        ours.setblocking(False)
        self._ctl = ours
        # A sandbox dropped without close() still ends its template and releases its pipe and
        # socket (no stray process, no descriptor left to the garbage collector).
        self._release = weakref.finalize(self, _release, self._process, ours)
        self._buffer.clear()
        self._close_fds()
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_readable)
        ours.sendall(protocol.frame(self.config.template_config(entries, view=view)))
        try:
            ready = await asyncio.wait_for(self._ready, self.config.start_timeout)
        except (TimeoutError, SandboxUnavailableError):
            self._teardown()
            raise SandboxUnavailableError("The scorer sandbox did not start.") from None
        self.restarts += 1
        self._apply_ready(entries, {**ready, "isolation": {**ready["isolation"], "view": view}})

    def _jail(self, entries: Sequence[PluginEntry]) -> list[str]:
        """The bwrap argv the template runs under; empty when this server cannot."""
        bwrap = jail.find_bwrap() if self.config.view == "auto" and os.geteuid() == 0 else None
        if bwrap is None:
            return []
        modules = sorted({e.value.split(":")[0].split(".")[0] for e in entries if e.allowed})
        readable = jail.readable_paths(
            sys.executable, self.config.plugin_dirs(entries), self.config.forbid, modules
        )
        return jail.command(bwrap, readable=readable)

    def _apply_ready(self, entries: Sequence[PluginEntry], ready: Mapping[str, Any]) -> None:
        self.isolation = Isolation(**ready["isolation"])
        if not self.isolation.complete:
            log.warning("scorer isolation incomplete", extra={"isolation": asdict(self.isolation)})
        loaded, failed = _checked(ready)
        self._scorers = {meta.name: meta for meta in loaded.values()}
        statuses = []
        for entry in entries:
            if not entry.allowed:
                statuses.append(PluginStatus(entry, "not_allowed", entry.reason))
            elif entry.name in loaded:
                statuses.append(PluginStatus(entry, "loaded", meta=loaded[entry.name]))
            else:
                reason = failed.get(entry.name, "not loaded")
                log.warning("scorer plugin skipped", extra={"plugin": entry.name, "why": reason})
                statuses.append(PluginStatus(entry, "failed", reason))
        self.plugins = statuses

    def _watch_stderr(self, loop: asyncio.AbstractEventLoop) -> None:
        """Log what the template writes to stderr (a traceback if it breaks), bounded."""
        assert self._process is not None and self._process.stderr is not None
        pipe = self._process.stderr
        os.set_blocking(pipe.fileno(), False)

        def drain() -> None:
            try:
                chunk = pipe.read(4096)
            except OSError:
                chunk = b""
            if not chunk:
                loop.remove_reader(pipe.fileno())
                return
            text = chunk.decode(errors="replace")[:2000]
            log.warning("scorer template wrote to stderr", extra={"text": text})

        loop.add_reader(pipe.fileno(), drain)

    def _teardown(self) -> None:
        release = getattr(self, "_release", None)
        if release is not None:
            release.detach()
        if self._ctl is not None:
            with contextlib.suppress(RuntimeError, ValueError):
                asyncio.get_running_loop().remove_reader(self._ctl.fileno())
            self._ctl.close()
            self._ctl = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            if self._process.stderr is not None:
                with contextlib.suppress(RuntimeError, ValueError):
                    asyncio.get_running_loop().remove_reader(self._process.stderr.fileno())
                self._process.stderr.close()
            self._process = None
        self._close_fds()
        self._fail_all()

    def _close_fds(self) -> None:
        while self._fds:
            with contextlib.suppress(OSError):
                os.close(self._fds.popleft())

    def _fail_all(self) -> None:
        error = SandboxUnavailableError("The scorer sandbox stopped.")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()  # mark retrieved: the starter reports it
        for job in self._jobs.values():
            for future in (job.started, job.exited):
                if not future.done():
                    future.set_exception(error)
                    future.exception()
        self._jobs.clear()

    async def close(self) -> None:
        self._teardown()

    # -- control channel ------------------------------------------------------------------
    def _on_readable(self) -> None:
        assert self._ctl is not None
        try:
            data, fds, _, _ = socket.recv_fds(self._ctl, 1 << 16, 8)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        if not data:
            asyncio.get_running_loop().remove_reader(self._ctl.fileno())
            self._ctl.close()
            self._ctl = None
            self._fail_all()
            return
        self._buffer.extend(data)
        # Descriptors arrive with the first bytes of their frame, which may complete in a
        # later read: queue them; each "started" frame takes the oldest.
        self._fds.extend(fds)
        for message in protocol.split_frames(self._buffer):
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(message)
            return
        if op == "refused":
            log.error("scorer isolation unavailable and required: refusing to run scorers")
            return
        job = self._jobs.get(int(message.get("id", -1)))
        if op == "started" and self._fds:
            fd = self._fds.popleft()
            if job is None or job.started.done():
                os.close(fd)
            else:
                job.started.set_result((fd, int(message["pid"])))
        elif op == "exit" and job is not None and not job.exited.done():
            job.exited.set_result((int(message["code"]), float(message.get("cpu", 0.0))))

    def _send(self, message: dict[str, Any]) -> None:
        if self._ctl is None:
            raise SandboxUnavailableError()
        try:
            self._ctl.sendall(protocol.frame(message))
        except (BlockingIOError, OSError):
            raise SandboxUnavailableError() from None

    # -- running --------------------------------------------------------------------------
    def meta(self, name: str) -> ScorerMeta:
        try:
            return self._scorers[name]
        except KeyError:
            raise ScorerUnavailableError() from None

    def distribution(self, name: str) -> Distribution | None:
        for plugin in self.plugins:
            if plugin.entry.name == name and plugin.status == "loaded":
                entry = plugin.entry
                return Distribution(entry.dist, entry.dist_version, entry.content_sha256)
        return None

    def scorers(self) -> list[ScorerMeta]:
        return sorted(self._scorers.values(), key=lambda m: m.name)

    async def run(
        self, *, scorer: str, records: Sequence[InputRecord], now: datetime
    ) -> ScoreResult:
        await self.start()
        if self.config.require_isolation and not self.isolation.complete:
            raise SandboxUnavailableError(
                "Scorers are switched off: this server cannot isolate them "
                "(see docs/plugins/isolation.md)."
            )
        meta = self.meta(scorer)
        async with self._slots:
            raw = await self._run_child(meta, records, now)
        return validated(raw, meta, records)

    async def _run_child(
        self, meta: ScorerMeta, records: Sequence[InputRecord], now: datetime
    ) -> bytes:
        loop = asyncio.get_running_loop()
        self._next_id += 1
        job_id = self._next_id
        job = _Job(loop.create_future(), loop.create_future())
        self._jobs[job_id] = job
        payload = protocol.encode_job(scorer=meta.name, records=records, now=now)
        sock: socket.socket | None = None
        try:
            self._send({"op": "job", "id": job_id, "scorer": meta.name})
            fd, _pid = await asyncio.wait_for(job.started, self.config.start_timeout)
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            async with asyncio.timeout(self.config.timeout_seconds):
                raw = await self._exchange(loop, sock, payload)
                if raw[:1] in (b"R", b"V"):
                    # A complete answer: do not wait for the reap round trip. The kill
                    # ends anything the plugin left behind (its group, once reaped).
                    self._kill(job_id)
                    code, cpu = 0, 0.0
                else:
                    code, cpu = await job.exited
        except TimeoutError:
            self._kill(job_id)
            log.warning("scorer timed out", extra={"plugin": meta.name})
            raise ScorerTimeoutError() from None
        except ScorerOutputError:
            self._kill(job_id)
            raise
        finally:
            if sock is not None:
                sock.close()
            self._jobs.pop(job_id, None)
        return self._outcome(meta, raw, code, cpu)

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, payload: bytes
    ) -> bytes:
        try:
            await loop.sock_sendall(sock, payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return b""  # the child died before reading: its exit code tells why
        out = bytearray()
        while True:
            chunk = await loop.sock_recv(sock, 1 << 16)
            if not chunk:
                return bytes(out)
            out.extend(chunk)
            if len(out) > MAX_OUTPUT_BYTES + 1:
                raise ScorerOutputError(
                    "The scorer's result was rejected: output is larger than 1 MiB",
                    code="output_too_large",
                )

    def _kill(self, job_id: int) -> None:
        with contextlib.suppress(SandboxUnavailableError):
            self._send({"op": "kill", "id": job_id})

    def _outcome(self, meta: ScorerMeta, raw: bytes, code: int, cpu: float) -> bytes:
        if raw[:1] == b"R" and code == 0:
            return raw[1:]
        if raw[:1] == b"V":
            log.warning("scorer tried to use the network", extra={"plugin": meta.name})
            raise ScorerViolationError(
                "The scorer tried to use the network, which scorers may not do; "
                "the connection was refused and nothing was stored."
            )
        if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= self.config.cpu_seconds):
            log.warning("scorer used up its CPU time", extra={"plugin": meta.name})
            raise ScorerTimeoutError(
                f"The scorer used up its CPU time ({self.config.cpu_seconds} s) and was stopped."
            )
        kind = "crashed"
        failure = _failure(raw) if raw[:1] == b"E" else {}
        if failure:
            kind = f"raised {failure['type']}"
        elif code < 0:
            kind = f"was killed by signal {-code}"
        # The log gets where in the plugin it failed (file, line, function), never the
        # message nor source lines (either may quote member data or secrets).
        frames = [f"{f[0]}:{f[1]} in {f[2]}" for f in failure.get("frames", [])]
        extra = {"plugin": meta.name, "exit": code, "what": kind, "frames": frames}
        log.warning("scorer failed", extra=extra)
        error = ScorerError(f"The scorer failed ({kind}).")
        error.failure = failure
        raise error


def _failure(raw: bytes) -> dict[str, Any]:
    """The template's report of an exception: type, message, the plugin's frames."""
    try:
        data = json.loads(raw[1:])
        return {
            "type": str(data.get("type", "an error"))[:60],
            "message": str(data.get("message", ""))[:500],
            "frames": [
                [str(f[0])[:200], int(f[1] or 0), str(f[2])[:100], str(f[3])[:200]]
                for f in data.get("frames", [])[:20]
            ],
        }
    except (ValueError, AttributeError, TypeError, IndexError):
        return {}


def _checked(
    ready: Mapping[str, Any],
) -> tuple[dict[str, ScorerMeta], dict[str, str]]:
    """The template's report, validated: declarations come from plugin code (PL-06)."""
    loaded: dict[str, ScorerMeta] = {}
    failed = {str(item["entry"]): str(item["reason"])[:500] for item in ready["failed"]}
    for item in ready["loaded"]:
        name = str(item["entry"])
        try:
            loaded[name] = reported_meta(item["meta"], entry_point_name=name)
        except ContractViolation as exc:
            failed[name] = f"contract violation: {exc}"
    return loaded, failed


__all__ = ["InProcessRunner", "Isolation", "PluginStatus", "Runner", "Sandbox", "SandboxConfig"]


def _release(process: subprocess.Popen[bytes], ctl: socket.socket) -> None:
    """What a dropped sandbox still owns: its template, the template's stderr pipe, its end of
    the control socket."""
    with contextlib.suppress(OSError):
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    if process.stderr is not None:
        process.stderr.close()
    ctl.close()

"""What a scoring child does to itself before it may receive member data.

New session, own network, IPC and mount namespaces (private tmpfs on the scratch dirs, an empty
read-only tmpfs over the data dir), a fresh working dir, rlimits, an unprivileged uid of its
own, no_new_privs, not dumpable, and an environment of PATH, LANG and TMPDIR only. Steps
that need root are recorded as unavailable rather than failing, so the server can decide.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
from dataclasses import dataclass, field, replace

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x1, 0x2, 0x4, 0x4000, 0x40000
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
ISOLATION_REFUSED = 87  # child exit code: isolation unavailable and required
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108 - these get private tmpfs mounts

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class Config:
    entry_points: list[dict[str, str]]
    paths: list[str] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)
    # Each child runs as uid/gid base + a slot no other live child holds: children running
    # at the same time cannot signal, trace or read one another (there is no Yama here).
    uid: int = 65534
    gid: int = 65534
    id_slots: int = 1
    require_isolation: bool = True
    prefork: int = 2
    hide: list[str] = field(default_factory=list)
    import_timeout: int = 10
    # Per-child private tmpfs mounts; the first holds the child's working dir (and TMPDIR).
    # In bubblewrap's view /tmp stays the read-only, root-owned one (a venv may live there).
    scratch: list[str] = field(default_factory=lambda: list(SCRATCH_DIRS))
    view: bool = False  # started in bubblewrap's reduced view (coop/scoring/jail.py)


def _mount(
    source: bytes | None, target: str, fstype: bytes | None, flags: int, data: bytes | None
) -> bool:
    return bool(_libc.mount(source, target.encode(), fstype, flags, data) == 0)


def _isolate_namespaces(cfg: Config) -> dict[str, bool]:
    got = {"netns": False, "mountns": False}
    # Own network namespace (no interface, no abstract Unix sockets of anyone else) and own
    # IPC namespace (no SysV shared memory or queues shared with another member's child).
    if _libc.unshare(CLONE_NEWNET | CLONE_NEWIPC) == 0:
        got["netns"] = True
    if _libc.unshare(CLONE_NEWNS) == 0 and _mount(None, "/", None, MS_REC | MS_PRIVATE, None):
        ok = True
        for path in cfg.scratch:
            if os.path.isdir(path):
                ok &= _mount(b"tmpfs", path, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=64m,mode=1777")
        for path in cfg.hide:
            if os.path.isdir(path):
                # An empty read-only tmpfs over the data dir: the files are simply not there.
                flags = MS_RDONLY | MS_NOSUID | MS_NODEV
                ok &= _mount(b"tmpfs", path, b"tmpfs", flags, b"size=4k,mode=0555")
        got["mountns"] = ok
    return got


def _limit(cfg: Config) -> None:
    lim = cfg.limits
    pairs = {
        resource.RLIMIT_AS: lim.get("memory_bytes", 512 * 1024 * 1024),
        resource.RLIMIT_FSIZE: lim.get("fsize_bytes", 16 * 1024 * 1024),
        resource.RLIMIT_NOFILE: lim.get("nofile", 32),
        resource.RLIMIT_NPROC: lim.get("nproc", 1),
        resource.RLIMIT_CORE: 0,
    }
    for which, value in pairs.items():
        resource.setrlimit(which, (value, value))
    cpu = lim.get("cpu_seconds", 5)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _drop_privileges(cfg: Config, workdir: str) -> bool:
    if os.geteuid() != 0:
        return False
    os.chown(workdir, cfg.uid, cfg.gid)
    os.setgroups([])
    os.setgid(cfg.gid)
    os.setuid(cfg.uid)
    return True


class ChildIds:
    """Hands each new child a slot (uid/gid offset) that no live child holds."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self.next = 0
        self.live: dict[int, int] = {}  # pid -> slot

    def take(self) -> int:
        held = set(self.live.values())
        for _ in range(self.slots):
            slot, self.next = self.next % self.slots, self.next + 1
            if slot not in held:
                return slot
        return self.next % self.slots  # more live children than slots: share (1 slot)

    def child_config(self, cfg: Config, slot: int) -> Config:
        return replace(cfg, uid=cfg.uid + slot, gid=cfg.gid + slot)


def lock_down(cfg: Config) -> dict[str, bool]:
    """Everything a child does to itself before it may receive member data."""
    os.setsid()
    got = _isolate_namespaces(cfg)
    workdir = os.path.join(cfg.scratch[0], f"coop-score-{os.getpid()}")  # a private tmpfs
    os.mkdir(workdir, 0o700)
    got["uid_drop"] = _drop_privileges(cfg, workdir)
    os.chdir(workdir)
    _limit(cfg)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": workdir})
    return got


def probe_isolation(cfg: Config) -> dict[str, bool]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        try:
            got = lock_down(cfg)
            os.write(write_end, json.dumps(got).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        raw = pipe.read()
    os.waitpid(pid, 0)
    try:
        found: dict[str, bool] = json.loads(raw)
    except ValueError:
        found = {"netns": False, "mountns": False, "uid_drop": False}
    return found


def leave_network() -> bool:
    """Move this process into a new, empty network namespace (root only)."""
    return bool(_libc.unshare(CLONE_NEWNET) == 0)

"""The reduced filesystem view the scoring template starts in: a bubblewrap (`bwrap`) command.

Inside: read-only binds of /usr, the interpreter's prefix, the venv, coop's own package and
the folders the allowed plugin distributions live in; a fresh /proc (own pid namespace), a
minimal /dev, empty root-owned tmpfs on /tmp, /var/tmp and /run; nothing else. No /etc
beyond the dynamic linker's cache, no /run or /var/run (so no PostgreSQL, Redis or D-Bus
socket), no data dir, no keyring, no home. Own network (abstract sockets included), IPC,
UTS and cgroup namespaces; a new session; an environment of PATH and LANG only; only the
control socket inherited; dies with the server.

The template runs as root inside with only the capabilities it needs to fork locked-down
children (mount a private scratch tmpfs, own network namespace, switch to a uid of its own); it
never imports plugin code. A path that is, or holds, the data dir is never bound.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import coop

CLEAN_PATH = "/usr/bin:/bin"
# What the template needs to lock its children down; everything else is dropped.
CAPABILITIES = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL")
# Empty, root-owned (0755) tmpfs: plugin code (unprivileged) can write none of them.
EMPTY_DIRS = ("/tmp", "/var/tmp", "/run", "/var/run")  # noqa: S108
SYSTEM_DIRS = ("/usr",)
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")


def find_bwrap() -> str | None:
    """bubblewrap, looked up on a fixed PATH (not the server's)."""
    return shutil.which("bwrap", path=CLEAN_PATH + ":/usr/local/bin")


# Run in a throw-away interpreter (never the server): sys.path after site processing, and
# where each plugin's top-level module would be found (an editable install maps it to its
# source folder). find_spec locates a top-level module without executing it.
_PROBE = """
import importlib.util, json, os, sys
found = list(sys.path)
for name in sys.argv[1:]:
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        continue
    if spec is not None:
        found += list(spec.submodule_search_locations or [])
        if spec.origin and os.path.isabs(spec.origin):
            found.append(os.path.dirname(spec.origin))
print(json.dumps(found))
"""


def interpreter_path(executable: str, modules: Sequence[str] = ()) -> list[str]:
    """sys.path of `executable -I`, plus the folders holding `modules` (top-level names)."""
    out = subprocess.run(  # noqa: S603 - fixed argv, clean environment
        [executable, "-I", "-c", _PROBE, *modules],
        env={"PATH": CLEAN_PATH, "LANG": "C.UTF-8"},
        capture_output=True,
        check=True,
        timeout=60,
    )
    return [str(p) for p in json.loads(out.stdout)]


def _holds(path: Path, forbidden: Iterable[Path]) -> bool:
    return any(f == path or f.is_relative_to(path) for f in forbidden)


def readable_paths(
    executable: str, extra: Sequence[str], forbidden: Sequence[str], modules: Sequence[str] = ()
) -> list[str]:
    """Existing folders the template must read, outermost only, never one holding `forbidden`.
    `extra`: plugin folders; `modules`: the plugins' top-level module names."""
    wanted = [
        sys.base_prefix,
        sys.prefix,
        str(Path(executable).resolve().parent.parent),
        str(Path(coop.__file__).resolve().parent),
        *interpreter_path(executable, modules),
        *extra,
    ]
    banned = [Path(f).resolve() for f in forbidden]
    found: list[Path] = []
    for raw in wanted:
        if not raw or not os.path.isabs(raw) or not os.path.exists(raw):
            continue
        path = Path(raw).resolve()
        if not _holds(path, banned) and path not in found:
            found.append(path)
    outermost = [p for p in found if not any(p != q and p.is_relative_to(q) for q in found)]
    return sorted(str(p) for p in outermost)


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        args += ["--ro-bind", path, path]
    for path in SYSTEM_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in SYSTEM_FILES:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def command(bwrap: str, *, readable: Sequence[str]) -> list[str]:
    """The bwrap argv that runs what follows it in the reduced view (append `--` and argv)."""
    args = [
        bwrap,
        "--die-with-parent",
        "--new-session",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--clearenv",
        "--setenv",
        "PATH",
        CLEAN_PATH,
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--cap-drop",
        "ALL",
    ]
    for cap in CAPABILITIES:
        args += ["--cap-add", cap]
    args += _system_binds()
    args += ["--proc", "/proc", "--dev", "/dev"]
    for path in EMPTY_DIRS:
        args += ["--tmpfs", path]
    args += _parents(readable)
    for path in readable:  # after the tmpfs: a venv under /tmp stays visible
        args += ["--ro-bind", path, path]
    return [*args, "--remount-ro", "/", "--chdir", "/"]


def _parents(readable: Sequence[str]) -> list[str]:
    """World-traversable folders above each bind (bwrap would make them 0700: an unprivileged
    uid could not reach Python under /root)."""
    system = [Path(p) for p in SYSTEM_DIRS]  # read-only binds already
    done = {Path("/"), *(Path(p) for p in EMPTY_DIRS)}
    made: list[str] = []
    for path in readable:
        for parent in reversed(Path(path).parents):
            if parent not in done and not any(parent.is_relative_to(f) for f in system):
                done.add(parent)
                made += ["--perms", "0755", "--dir", str(parent)]
    return made

"""The plugin tutorial (docs/plugins/index.md), executed as written from an empty folder:
coop from this working tree in a fresh venv (no system site-packages, so a dependency the
scaffold or coop[test] forgot fails here), then every shell step of the page in order:
scaffold, `pip install -e ".[test]"`, the scaffold's tests (in the sandbox), the page's own
test, `coop plugins list`, `coop plugins run`, and `coop dev` showing the score.

Packages come from wherever this machine's pip gets them (PyPI and its cache in CI, a local
wheel folder here); coop itself is a wheel built from this working tree."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.doc_blocks import PLUGIN_DOCS, Block, blocks, missing_lines, steps
from tests.fakes.server import free_port, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]


class Shell:
    """The author's terminal: a fresh venv first on PATH, a current folder, no COOP_*."""

    def __init__(self, venv: Path, cwd: Path) -> None:
        self.cwd = cwd
        keep = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k == "HOME"}
        self.env = {
            **keep,
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "VIRTUAL_ENV": str(venv),
            "LANG": "C.UTF-8",
        }

    def run(self, command: str) -> str:
        ran = subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert ran.returncode == 0, f"$ {command}\n{ran.stdout}\n{ran.stderr}"
        return ran.stdout + ran.stderr

    def serve(self, command: str, port: int) -> str:
        """A step that serves (`coop dev`): its output once it answers, then it is stopped."""
        log = self.cwd / "serve.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=self.cwd, env=self.env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while "log in as" not in log.read_text() or not _healthy(port):
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            return log.read_text()
        finally:
            stop_process(process)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def fresh_venv_with_coop(tmp: Path) -> Path:
    wheels, venv = tmp / "wheels", tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels),
         str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    wheel = next(wheels.glob("coop-*.whl"))
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return venv


def run_step(shell: Shell, block: Block, port: int) -> None:
    for step in steps(block):
        if step.command.startswith("cd "):
            shell.cwd = shell.cwd / step.command[3:].strip()
            continue
        command = re.sub(r"--port \d+", f"--port {port}", step.command)
        expected = [re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", e) for e in step.expected]
        serves = command.startswith("coop dev")
        began = time.monotonic()
        output = shell.serve(command, port) if serves else shell.run(command)
        print(f"\n{time.monotonic() - began:5.1f} s  $ {command}")
        assert not missing_lines(expected, output), f"$ {command}\n{output}"


def test_the_tutorial_runs_as_written_from_an_empty_folder(tmp_path: Path) -> None:
    started = time.monotonic()
    venv = fresh_venv_with_coop(tmp_path)
    installed = time.monotonic()
    folder = tmp_path / "work"
    folder.mkdir()
    shell = Shell(venv, folder)
    port = free_port()
    ran = []
    for block in blocks(PLUGIN_DOCS / "index.md"):
        if block.mark == "illustrative":
            continue
        if block.mark == "file":
            (shell.cwd / block.arg).write_text(block.code)
        elif block.mark == "tutorial-test":
            (shell.cwd / "tests" / "test_from_the_docs.py").write_text(block.code)
            output = shell.run("pytest -q -p no:cacheprovider tests/test_from_the_docs.py")
            assert "1 passed" in output, output
        elif block.lang == "console":
            run_step(shell, block, port)
        else:
            continue
        ran.append(block.where)
    assert len(ran) >= 7, ran  # scaffold, test, list, file, run, dev, the page's test
    finished = time.monotonic()
    print(
        f"\ntutorial: coop wheel + fresh venv {installed - started:.0f} s, "
        f"the page's steps {finished - installed:.0f} s"
    )

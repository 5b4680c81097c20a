"""The `coop` command line fails in one clear line: exit 2 for bad arguments or configuration."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from coop.cli import main
from tests.fakes.server import free_port


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    return subprocess.run(
        [sys.executable, "-m", "coop", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["serve", "--port", "eighty"],
        ["serve", "--bogus"],
        ["migrate", "extra"],
        ["keys"],
        ["keys", "rotate", "--force"],
    ],
    ids=[
        "no-command",
        "unknown-command",
        "bad-port",
        "unknown-flag",
        "extra-arg",
        "no-sub",
        "sub-flag",
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("coop") and "error:" in err
    assert "--help" in err


def test_bad_arguments_exit_2_from_a_real_process() -> None:
    done = run("frobnicate")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "invalid choice: 'frobnicate'" in done.stderr


def test_help_exits_0() -> None:
    done = run("--help")
    assert done.returncode == 0
    for command in ("serve", "migrate", "keys"):
        assert command in done.stdout


def test_config_error_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    done = run("migrate", COOP_ISSUER="ftp://x", COOP_DATA_DIR=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr == "coop: COOP_ISSUER must be an absolute http(s) URL, got 'ftp://x'\n"
    assert done.stdout == ""


def test_bad_boolean_setting_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COOP_DEV", "maybe")
    assert main(["keys", "generate"]) == 2
    assert capsys.readouterr().err == (
        "coop: COOP_DEV must be a boolean (1/0, true/false), got 'maybe'\n"
    )


def test_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    done = run(
        "migrate",
        COOP_DATABASE_URL="postgres://postgres@127.0.0.1:1/nothing",
        COOP_DATA_DIR=str(tmp_path),
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert "127.0.0.1" in done.stderr


def test_serve_on_another_port_advertises_that_port(tmp_path: Path) -> None:
    """Without COOP_ISSUER, discovery names the port the server listens on, not 8000."""
    port = free_port()
    env = {"COOP_DATA_DIR": str(tmp_path), "COOP_DEV": "1"}
    assert run("migrate", **env).returncode == 0
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "coop", "serve", "--port", str(port)],
        env={**clean, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "coop serve exited"
            try:
                metadata = httpx.get(url, timeout=2).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "coop serve did not answer"
                time.sleep(0.05)
        assert metadata["issuer"] == f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def test_serve_on_every_address_without_an_issuer_exits_2(tmp_path: Path) -> None:
    done = run("serve", "--host", "0.0.0.0", COOP_DATA_DIR=str(tmp_path), COOP_DEV="1")
    assert done.returncode == 2
    assert done.stderr.startswith("coop: coop serve --host 0.0.0.0 listens on every address")
    assert "Traceback" not in done.stderr


def test_a_bad_scorer_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    done = run("migrate", COOP_SCORER_TIMEOUT="soon", COOP_DATA_DIR=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr == "coop: COOP_SCORER_TIMEOUT must be a number of seconds, got 'soon'\n"
    assert done.stdout == ""

"""`coop dev`: one command gives a plugin author a served coop with a sample member scored by
every installed scorer, and the login to see it; it refuses a production database."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_master_key
from tests.fakes.server import free_port, stop_process
from tests.web.journeys import csrf_token_in

pytestmark = pytest.mark.timeout(240)

COOP = str(Path(sys.executable).parent / "coop")
LOGIN = re.compile(r"log in as (\S+) with the password (\S+)")


def plain_env(**extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **extra}


class DevServer:
    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.out = folder / f"dev-{self.port}.out"
        with self.out.open("wb") as out:
            self.process = subprocess.Popen(
                [COOP, "dev", "--port", str(self.port), "--data-dir", str(folder / "d")],
                cwd=folder,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def printed(self) -> str:
        return self.out.read_text(errors="replace")

    def wait(self, timeout: float = 180) -> tuple[str, str]:
        """The login it printed, once it answers /healthz."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.printed()
            found = LOGIN.search(self.printed())
            if found:
                try:
                    if httpx.get(self.url + "/healthz", timeout=5).status_code == 200:
                        return found.group(1), found.group(2)
                except httpx.TransportError:
                    pass
            time.sleep(0.2)
        raise AssertionError(f"coop dev did not come up:\n{self.printed()}")


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer(tmp_path, plain_env())
    try:
        yield server
    finally:
        stop_process(server.process)


def log_in_and_read_scores(url: str, email: str, password: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as http:
        token = csrf_token_in(http.get("/login").text)
        answer = http.post(
            "/login", data={"csrf_token": token, "email": email, "password": password}
        )
        assert answer.status_code == 303, answer.text
        scores = http.get("/")
        assert scores.status_code == 200
        return scores.text


def test_dev_serves_a_sample_member_who_logs_in_and_sees_each_score(
    dev_server: DevServer, tmp_path: Path
) -> None:
    email, password = dev_server.wait()
    assert dev_server.url + "/" in dev_server.printed()  # the issuer is where it listens
    printed = dev_server.printed()
    value = re.search(r"  reach: ([0-9.]+) \(stored\)", printed)
    assert value, printed
    assert "  cadence: " in printed
    assert "warning: reach reads repository records but the sample member has none" in printed
    page = log_in_and_read_scores(dev_server.url, email, password)
    assert "Reach" in page and "Cadence" in page
    assert f"{float(value.group(1)):.1f}"[:3] in page  # the value it printed is on the page
    stop_process(dev_server.process)
    again = DevServer(tmp_path, plain_env())  # same data dir: the same member and login
    try:
        assert again.wait() == (email, password)
        assert "sample member reused" in again.printed()
        assert "Reach" in log_in_and_read_scores(again.url, email, password)
    finally:
        stop_process(again.process)


def test_dev_refuses_a_non_dev_database_that_holds_members(tmp_path: Path) -> None:
    env = plain_env(
        COOP_DATA_DIR=str(tmp_path / "prod"),
        COOP_MASTER_KEY=make_master_key(),
        COOP_SECRET_KEY="production-secret-" + "x" * 40,
    )
    migrated = subprocess.run([COOP, "migrate"], env=env, capture_output=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    create = (
        "import asyncio\n"
        "from coop.app import build_runtime\n"
        "from coop.cli import with_db\n"
        "from coop.config import Settings\n"
        "from coop.members.service import create_member\n"
        "s = Settings.from_env()\n"
        "v = build_runtime(s).vault\n"
        "asyncio.run(with_db(s, lambda: create_member(vault=v, email='real@example.org', "
        "password='a real members password')))\n"
    )
    made = subprocess.run([sys.executable, "-c", create], env=env, capture_output=True)
    assert made.returncode == 0, made.stderr
    refused = subprocess.run(
        [COOP, "dev", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert "refusing to run" in lines[0] and "holds 1 member(s)" in lines[0]
    with sqlite3.connect(tmp_path / "prod" / "coop.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM member").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM connector_record").fetchone() == (0,)

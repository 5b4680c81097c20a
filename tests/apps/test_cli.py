"""`coop app create` end to end: a real process against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coop.apps.models import App
from coop.vault import Vault


def coop(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    env.update(COOP_DATABASE_URL=database_url, COOP_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "coop", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_app_create_prints_client_information_once(db: str, tmp_path: Path) -> None:
    result = coop(
        db,
        tmp_path,
        "app", "create", "--name", "Ranker",
        "--redirect-uri", "https://ranker.example/cb",
        "--redirect-uri", "http://127.0.0.1:9000/cb",
        "--homepage", "https://ranker.example",
        "--webhook-url", "https://ranker.example/hook",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["client_name"] == "Ranker"
    assert info["redirect_uris"] == ["https://ranker.example/cb", "http://127.0.0.1:9000/cb"]
    assert info["token_endpoint_auth_method"] == "client_secret_basic"
    app = await App.get(client_id=info["client_id"])
    assert app.secret_hash == Vault.token_hash(info["client_secret"])
    assert app.owner_id is None
    assert app.webhook_url == "https://ranker.example/hook"


async def test_app_create_public_client_has_no_secret(db: str, tmp_path: Path) -> None:
    result = coop(
        db, tmp_path, "app", "create", "--name", "N", "--redirect-uri", "http://[::1]:1/cb",
        "--public",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert "client_secret" not in info
    assert info["token_endpoint_auth_method"] == "none"


@pytest.mark.parametrize(
    "args",
    [
        ["app", "create", "--name", "N"],
        ["app", "create", "--redirect-uri", "https://a.example/cb"],
        ["app", "create", "--name", "N", "--redirect-uri", "https://a.example/cb#x"],
        ["app", "create", "--name", "N", "--redirect-uri", "http://a.example/cb"],
        ["app", "frobnicate"],
    ],
)
async def test_bad_arguments_exit_2_with_one_line(db: str, tmp_path: Path, args: list[str]) -> None:
    result = coop(db, tmp_path, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert await App.all().count() == 0

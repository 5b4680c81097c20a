"""`coop app create` end to end: a real process against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coop.apps.models import App
from coop.config import Settings
from coop.portability import webhooks
from coop.vault import Vault, load_keyring, load_secret_key


def coop(
    database_url: str, data_dir: Path, *args: str, settings: Settings | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    env.update(COOP_DATABASE_URL=database_url, COOP_DATA_DIR=str(data_dir))
    if settings is not None:  # the server's keys: needed to derive webhook secrets
        env.update(COOP_SECRET_KEY=settings.secret_key, COOP_MASTER_KEY=settings.master_key)
    return subprocess.run(
        [sys.executable, "-m", "coop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def server_vault(settings: Settings) -> Vault:
    return Vault(load_keyring(settings), load_secret_key(settings))


async def test_app_create_prints_client_information_once(
    db: str, tmp_path: Path, settings: Settings
) -> None:
    result = coop(
        db,
        tmp_path,
        "app", "create", "--name", "Ranker",
        "--redirect-uri", "https://ranker.example/cb",
        "--redirect-uri", "http://127.0.0.1:9000/cb",
        "--homepage", "https://ranker.example",
        "--webhook-url", "https://ranker.example/hook",
        settings=settings,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["client_name"] == "Ranker"
    assert info["redirect_uris"] == ["https://ranker.example/cb", "http://127.0.0.1:9000/cb"]
    assert info["token_endpoint_auth_method"] == "client_secret_basic"
    assert info["client_secret_expires_at"] == 0 and info["client_uri"] == "https://ranker.example"
    app = await App.get(client_id=info["client_id"])
    assert app.secret_hash == Vault.token_hash(info["client_secret"])
    assert app.owner_id is None
    assert app.webhook_url == "https://ranker.example/hook"
    # The webhook secret is the one the server derives (and signs with), and is not stored.
    secret = info["webhook_secret"]
    assert secret == server_vault(settings).app_webhook_secret(app.client_id, app.webhook_salt)
    assert secret not in repr(await App.all().values())


async def test_rotate_webhook_secret_prints_a_new_secret_and_the_old_one_stops_verifying(
    db: str, tmp_path: Path, settings: Settings
) -> None:
    created = coop(
        db, tmp_path, "app", "create", "--name", "N", "--redirect-uri", "http://[::1]:1/cb",
        "--public", "--webhook-url", "https://n.example/hook", settings=settings,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    rotated = coop(
        db, tmp_path, "app", "rotate-webhook-secret", "--client-id", info["client_id"],
        settings=settings,
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["client_id"] == info["client_id"]
    assert new["webhook_secret"].startswith("coop_whsec_")
    assert new["webhook_secret"] != info["webhook_secret"]
    app = await App.get(client_id=info["client_id"])
    signing = server_vault(settings).app_webhook_secret(app.client_id, app.webhook_salt)
    assert signing == new["webhook_secret"]
    header = webhooks.sign(signing, b"{}", 1_700_000_000)
    assert webhooks.verify(new["webhook_secret"], b"{}", header, now=1_700_000_000)
    assert not webhooks.verify(info["webhook_secret"], b"{}", header, now=1_700_000_000)


async def test_rotate_webhook_secret_of_an_unknown_app_exits_2_with_one_line(
    db: str, tmp_path: Path, settings: Settings
) -> None:
    result = coop(
        db, tmp_path, "app", "rotate-webhook-secret", "--client-id", "coop_nobody",
        settings=settings,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


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
        ["app", "rotate-webhook-secret"],
    ],
)
async def test_bad_arguments_exit_2_with_one_line(db: str, tmp_path: Path, args: list[str]) -> None:
    result = coop(db, tmp_path, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert await App.all().count() == 0


async def test_app_create_and_set_terms_print_the_promises(db: str, tmp_path: Path) -> None:
    result = coop(
        db, tmp_path,
        "app", "create", "--name", "Ranker", "--redirect-uri", "https://ranker.example/cb",
        "--purpose", "To rank posts.", "--score-purpose", "reach: to chart it",
        "--retention-days", "7", "--policy-uri", "https://ranker.example/privacy",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["purpose"] == "To rank posts."
    assert info["score_purposes"] == {"reach": "to chart it"}
    assert info["retention_days"] == 7 and info["policy_uri"] == "https://ranker.example/privacy"
    changed = coop(
        db, tmp_path, "app", "set-terms", "--client-id", info["client_id"],
        "--purpose", "To rank posts and to sell ads.",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    out = json.loads(changed.stdout)
    assert out["terms_version"] == 2 and out["purpose"] == "To rank posts and to sell ads."
    assert "retention_days" not in out  # set-terms declares the whole set anew
    assert (await App.get(client_id=info["client_id"])).terms_version == 2


@pytest.mark.parametrize(
    "extra",
    [
        ["--policy-uri", "javascript:alert(1)"],
        ["--purpose", "p" * 501],
        ["--retention-days", "forever"],
        ["--score-purpose", "no separator"],
    ],
)
async def test_app_create_with_bad_promises_exits_2_with_one_line(
    db: str, tmp_path: Path, extra: list[str]
) -> None:
    result = coop(
        db, tmp_path, "app", "create", "--name", "R", "--redirect-uri", "https://r.example/cb",
        *extra,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("coop: ")
    assert await App.all().count() == 0


async def test_set_terms_for_an_unknown_app_exits_2(db: str, tmp_path: Path) -> None:
    result = coop(db, tmp_path, "app", "set-terms", "--client-id", "coop_nope", "--purpose", "x")
    assert result.returncode == 2 and result.stderr.count("\n") == 1

"""Connectors load only through entry points; a broken one is skipped and reported."""

from __future__ import annotations

import dataclasses
from importlib.metadata import EntryPoint

import pytest

from coop.config import Settings
from coop.connectors import service
from coop.connectors.registry import GROUP, Registry
from coop.errors import NotFoundError
from coop.vault import Vault

MODULE = "tests.connectors.sample_plugins"


def point(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=target, group=GROUP)


def test_the_builtin_connectors_are_registered_through_entry_points() -> None:
    registry = Registry.load()
    assert {"feed", "archive"} <= set(registry.names())
    assert registry.broken == ()


def test_broken_entry_points_are_skipped_and_reported_never_fatal() -> None:
    registry = Registry.load(
        {"COOP_X": "1"},
        points=[
            point("good", f"{MODULE}:GoodConnector"),
            point("future", f"{MODULE}:FutureConnector"),
            point("kinds", f"{MODULE}:UnknownKindConnector"),
            point("exploding", f"{MODULE}:ExplodingConnector"),
            point("nosync", f"{MODULE}:NoSyncConnector"),
            point("missing", "tests.connectors.no_such_module:Thing"),
            point("renamed", f"{MODULE}:GoodConnector"),
        ],
    )
    assert registry.names() == ["good"]
    reasons = {b.name: b.reason for b in registry.broken}
    assert set(reasons) == {"future", "kinds", "exploding", "nosync", "missing", "renamed"}
    assert "api_version" in reasons["future"]
    assert "reads" in reasons["kinds"]
    assert "cannot start" in reasons["exploding"]
    assert "sync" in reasons["nosync"]
    assert "ModuleNotFoundError" in reasons["missing"]
    assert "differs" in reasons["renamed"]


def test_configure_receives_the_coop_environment() -> None:
    from tests.connectors.sample_plugins import GoodConnector

    Registry.load({"COOP_GOOD_TOKEN": "t"}, points=[point("good", f"{MODULE}:GoodConnector")])
    assert GoodConnector.configured == {"COOP_GOOD_TOKEN": "t"}


def test_the_catalogue_describes_reads_in_plain_words() -> None:
    registry = Registry.load(points=[point("good", f"{MODULE}:GoodConnector")])
    [entry] = service.list_catalogue(registry=registry)
    assert entry.reads == (
        ("post", "posts you published, with their reaction counts"),
        ("audience", "how many followers you have (a number, never who they are)"),
    )
    assert entry.never_reads == ("your messages",)
    assert entry.auth == "url"


def test_an_unknown_connector_name_is_not_found() -> None:
    with pytest.raises(NotFoundError) as caught:
        Registry({}).get("nope")
    assert caught.value.code == "unknown_connector"


def test_coop_plugins_restricts_which_connectors_load() -> None:
    points = [point("good", f"{MODULE}:GoodConnector"), point("bad", "no.such:Thing")]
    registry = Registry.load(points=points, allowed=["good"])
    assert registry.names() == ["good"]
    assert registry.broken == ()  # left out, so never imported
    assert Registry.load(points=points, allowed=[]).names() == []


def test_settings_built_in_code_configure_github_too(settings: Settings, vault: Vault) -> None:
    """The server's jobs load connectors with Settings.connector_env(): the environment the
    settings came from, plus GitHub's settings, so Settings made in code (no COOP_GITHUB_*
    variables) still configure the built-in GitHub connector."""
    from coop.connectors.builtin.github import GitHubConnector
    from coop.jobs import sync as sync_jobs

    configured = dataclasses.replace(
        settings, github_client_id="Iv1.abc", github_client_secret="s3cret", extra={}
    )
    github = sync_jobs.setup(configured, vault).registry.get("github")
    assert isinstance(github, GitHubConnector)
    assert github.app.configured and github.app.client_id == "Iv1.abc"
    plain = sync_jobs.setup(
        dataclasses.replace(settings, extra={"COOP_GITHUB_CLIENT_ID": "x"}), vault
    )
    unset = plain.registry.get("github")
    assert isinstance(unset, GitHubConnector) and not unset.app.configured  # settings win

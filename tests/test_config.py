"""Settings from the environment: defaults, parsing, and clear refusals."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from coop.config import Settings
from coop.db import normalise_url, tortoise_config
from coop.errors import ConfigError


def test_defaults_serve_sqlite_under_var_on_loopback() -> None:
    settings = Settings.from_env({})
    assert settings.data_dir == Path("var")
    assert settings.database_url == "sqlite://var/coop.sqlite3"
    assert settings.is_sqlite
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.dev is False
    assert settings.plugins is None
    assert settings.rate_limit == 600
    assert settings.master_key is None and settings.secret_key is None


def test_data_dir_moves_the_default_database() -> None:
    settings = Settings.from_env({"COOP_DATA_DIR": "/srv/coop"})
    assert settings.database_url == "sqlite:///srv/coop/coop.sqlite3"


def test_issuer_loses_its_trailing_slash_and_https_turns_on_secure_cookies() -> None:
    settings = Settings.from_env({"COOP_ISSUER": "https://coop.example/"})
    assert settings.issuer == "https://coop.example"
    assert settings.secure_cookies
    assert not Settings.from_env({}).secure_cookies


@pytest.mark.parametrize("issuer", ["ftp://x", "coop.example", "https://"])
def test_issuer_must_be_an_absolute_http_url(issuer: str) -> None:
    with pytest.raises(ConfigError, match="COOP_ISSUER"):
        Settings.from_env({"COOP_ISSUER": issuer})


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("yes", True), ("off", False), ("", False)]
)
def test_flags_accept_the_usual_spellings(raw: str, value: bool) -> None:
    assert Settings.from_env({"COOP_DEV": raw}).dev is value


def test_plugins_list_restricts_loading_and_unset_means_all() -> None:
    assert Settings.from_env({"COOP_PLUGINS": "reach, cadence,"}).plugins == ("reach", "cadence")
    assert Settings.from_env({"COOP_PLUGINS": ""}).plugins == ()


def test_outbound_allow_takes_cidrs_and_host_names() -> None:
    settings = Settings.from_env({"COOP_OUTBOUND_ALLOW": "127.0.0.1/32, Feeds.Example"})
    assert settings.outbound_allow == (ipaddress.ip_network("127.0.0.1/32"), "feeds.example")


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("COOP_RATE_LIMIT", "lots", "must be an integer"),
        ("COOP_RATE_LIMIT", "-1", "must be >= 0"),
        ("COOP_SESSION_IDLE_SECONDS", "5", "must be >= 60"),
        ("COOP_MAX_BODY_BYTES", "10", "must be >= 1024"),
        ("COOP_DB_STATEMENT_TIMEOUT", "soon", "must be a number of seconds"),
        ("COOP_DB_CONNECT_TIMEOUT", "0", "must be between 0 and 86400"),
        ("COOP_DB_POOL_SIZE", "0", "must be >= 1"),
    ],
)
def test_bad_numbers_are_config_errors(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: raw})
    assert name in caught.value.message and message in caught.value.message


def test_rate_limit_zero_turns_limiting_off() -> None:
    assert Settings.from_env({"COOP_RATE_LIMIT": "0"}).rate_limit == 0


def test_sqlite_urls_get_coops_pragmas_and_keep_explicit_ones() -> None:
    url = normalise_url("sqlite://var/coop.sqlite3?busy_timeout=500")
    assert url.startswith("sqlite://var/coop.sqlite3?")
    assert "journal_mode=WAL" in url and "secure_delete=ON" in url
    assert "busy_timeout=500" in url


def test_postgresql_scheme_is_accepted_as_postgres() -> None:
    url = "postgresql://coop@127.0.0.1:5432/coop"
    assert normalise_url(url) == "postgres://coop@127.0.0.1:5432/coop"


def test_settings_repr_never_shows_secrets() -> None:
    env = {
        "COOP_MASTER_KEY": "k1:" + "A" * 43,
        "COOP_SECRET_KEY": "s3cr3t-" * 6,
        "COOP_GITHUB_CLIENT_SECRET": "gh-s3cr3t",
    }
    shown = repr(Settings.from_env(env))
    for value in env.values():
        assert value not in shown


def test_an_unset_issuer_follows_the_address_coop_serve_listens_on() -> None:
    settings = Settings.from_env({})
    assert not settings.issuer_configured
    assert settings.served_at("127.0.0.1", 8123).issuer == "http://127.0.0.1:8123"
    assert settings.served_at("::1", 9000).issuer == "http://[::1]:9000"
    assert settings.served_at("coop.localhost", 80).issuer == "http://coop.localhost:80"


def test_a_configured_issuer_is_kept_whatever_the_port() -> None:
    settings = Settings.from_env({"COOP_ISSUER": "https://coop.example/"})
    assert settings.served_at("127.0.0.1", 8123).issuer == "https://coop.example"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "[::]"])
def test_a_wildcard_address_without_an_issuer_is_a_config_error(host: str) -> None:
    with pytest.raises(ConfigError, match="set COOP_ISSUER to the public URL"):
        Settings.from_env({}).served_at(host, 8000)


def test_postgres_connections_carry_the_fault_timeouts_and_migrations_lift_the_statement_one() -> (
    None
):
    settings = Settings.from_env(
        {
            "COOP_DB_STATEMENT_TIMEOUT": "2.5",
            "COOP_DB_ACQUIRE_TIMEOUT": "1",
            "COOP_DB_POOL_SIZE": "7",
        }
    )
    url = "postgres://coop@127.0.0.1:5432/coop"
    served = tortoise_config(settings, url=url)["connections"]["default"]["credentials"]
    assert served["server_settings"]["statement_timeout"] == "2500"
    assert (served["command_timeout"], served["acquire_timeout"]) == (3.5, 1.0)
    assert (served["timeout"], served["maxsize"]) == (5.0, 7)
    migrating = tortoise_config(settings, url=url, long_statements=True)["connections"]["default"]
    assert migrating["credentials"]["server_settings"]["statement_timeout"] == "0"
    assert migrating["credentials"]["command_timeout"] is None
    assert isinstance(tortoise_config(settings)["connections"]["default"], str)  # SQLite

"""Settings from the environment: defaults, parsing, and clear refusals."""

from __future__ import annotations

import ast
import ipaddress
from pathlib import Path

import pytest

from coop.config import Settings
from coop.db import normalise_url, tortoise_config
from coop.errors import ConfigError
from coop.scoring.sandbox_config import SandboxConfig


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
        ("COOP_GOVERNANCE", "maybe", "must be a boolean"),
        ("COOP_GOVERNANCE_QUORUM", "0", "must be >= 1"),
        ("COOP_GOVERNANCE_QUORUM", "101", "must be between 1 and 100"),
        ("COOP_GOVERNANCE_MAJORITY", "49", "must be >= 50"),
        ("COOP_GOVERNANCE_MAJORITY", "100", "must be between 50 and 99"),
        ("COOP_GOVERNANCE_VOTING_HOURS", "0", "must be >= 1"),
    ],
)
def test_bad_numbers_are_config_errors(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: raw})
    assert name in caught.value.message and message in caught.value.message


def test_governance_is_off_by_default_with_documented_rules() -> None:
    defaults = Settings.from_env({})
    assert defaults.governance is False
    assert (
        defaults.governance_quorum,
        defaults.governance_majority,
        defaults.governance_voting_hours,
    ) == (25, 50, 168)
    on = Settings.from_env({"COOP_GOVERNANCE": "1", "COOP_GOVERNANCE_QUORUM": "40"})
    assert (on.governance, on.governance_quorum) == (True, 40)


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
    sqlite = tortoise_config(settings)["connections"]["default"]
    assert sqlite["engine"] == "coop.sqlite"  # coop's client: its transactions are gated
    assert sqlite["credentials"]["synchronous"] == "FULL"  # the pragmas still reach it


def test_the_scorer_sandbox_settings_are_read_typed_into_its_config() -> None:
    settings = Settings.from_env(
        {
            "COOP_PLUGIN_PATH": "/srv/plugins/a::/srv/plugins/b",
            "COOP_SCORER_TIMEOUT": "2.5",
            "COOP_SCORER_CPU_SECONDS": "3",
            "COOP_SCORER_MEMORY_MB": "256",
            "COOP_SCORER_PARALLEL": "4",
            "COOP_SCORER_REQUIRE_ISOLATION": "off",
        }
    )
    config = SandboxConfig.from_settings(settings)
    assert config.plugin_path == ("/srv/plugins/a", "/srv/plugins/b")
    assert config.timeout_seconds == 2.5
    assert config.cpu_seconds == 3
    assert config.memory_bytes == 256 * 1024 * 1024
    assert config.parallel == 4
    assert config.require_isolation is False
    defaults = SandboxConfig.from_settings(Settings.from_env({}))
    assert (defaults.plugin_path, defaults.timeout_seconds, defaults.parallel) == ((), 10.0, 2)
    assert (defaults.memory_bytes, defaults.cpu_seconds) == (512 * 1024 * 1024, 5)


@pytest.mark.parametrize(
    ("env", "required"),
    [
        ({}, True),
        ({"COOP_DEV": "1"}, False),
        ({"COOP_DEV": "1", "COOP_SCORER_REQUIRE_ISOLATION": "yes"}, True),
        ({"COOP_SCORER_REQUIRE_ISOLATION": "0"}, False),
    ],
)
def test_scorer_isolation_is_required_unless_dev_or_turned_off(
    env: dict[str, str], required: bool
) -> None:
    assert SandboxConfig.from_settings(Settings.from_env(env)).require_isolation is required


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (
            "COOP_SCORER_TIMEOUT",
            "ten",
            "COOP_SCORER_TIMEOUT must be a number of seconds, got 'ten'",
        ),
        ("COOP_SCORER_TIMEOUT", "0", "COOP_SCORER_TIMEOUT must be between 0 and 86400 seconds"),
        ("COOP_SCORER_CPU_SECONDS", "1.5", "COOP_SCORER_CPU_SECONDS must be an integer, got '1.5'"),
        ("COOP_SCORER_CPU_SECONDS", "0", "COOP_SCORER_CPU_SECONDS must be >= 1, got 0"),
        ("COOP_SCORER_MEMORY_MB", "32", "COOP_SCORER_MEMORY_MB must be >= 64, got 32"),
        ("COOP_SCORER_MEMORY_MB", "lots", "COOP_SCORER_MEMORY_MB must be an integer, got 'lots'"),
        ("COOP_SCORER_PARALLEL", "0", "COOP_SCORER_PARALLEL must be >= 1, got 0"),
        (
            "COOP_SCORER_REQUIRE_ISOLATION",
            "maybe",
            "COOP_SCORER_REQUIRE_ISOLATION must be a boolean",
        ),
        ("COOP_SERVE_NO_JOBS", "2", "COOP_SERVE_NO_JOBS must be a boolean"),
    ],
)
def test_a_bad_sandbox_setting_is_a_config_error_naming_it(
    name: str, raw: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: raw})
    assert str(refused.value.message).startswith(message)


def test_serve_no_jobs_is_read_for_the_web_processes_of_coop_serve() -> None:
    assert Settings.from_env({}).serve_no_jobs is False
    assert Settings.from_env({"COOP_SERVE_NO_JOBS": "1"}).serve_no_jobs is True


# Reading the environment anywhere but coop/config.py (writing it, as `coop serve` does for
# its web processes and the sandbox child does to scrub it, is not reading).
_ENV_READS = ("os.environ.get", "os.getenv", "os.environ.copy", "os.environ.items")


def _environment_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        text = ast.unparse(node) if isinstance(node, ast.Attribute | ast.Subscript) else ""
        if (isinstance(node, ast.Attribute) and text in _ENV_READS) or (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and ast.unparse(node.value) == "os.environ"
        ):
            found.append(f"{path}:{node.lineno}: {text}")
        elif isinstance(node, ast.Name) and node.id in {"environ", "getenv"}:
            found.append(f"{path}:{node.lineno}: {node.id}")
    return found


def test_only_coop_config_reads_the_environment() -> None:
    package = Path(__file__).resolve().parents[1] / "coop"
    found = [
        hit
        for path in sorted(package.rglob("*.py"))
        if path != package / "config.py"
        for hit in _environment_reads(path)
    ]
    assert not found, f"read these settings in coop/config.py instead: {found}"


def test_the_environment_reads_check_finds_a_read(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os\nA = os.environ.get('X')\nB = os.environ['Y']\nC = os.getenv('Z')\n"
    )
    assert len(_environment_reads(module)) == 3

"""Settings read from the environment (the configuration contract in docs/operations.md)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from coop.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds (fractions allowed)."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value < 86400:
        raise ConfigError(f"{name} must be between 0 and 86400 seconds, got {raw!r}")
    return value


def _paths(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A search path: folders separated by the platform's separator (`:`), empty ones
    dropped."""
    return tuple(p for p in (env.get(name) or "").split(os.pathsep) if p.strip())


def _redis_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get("COOP_REDIS_URL") or "").strip()
    if not raw:
        return None
    if urlsplit(raw).scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError("COOP_REDIS_URL must be a redis://, rediss:// or unix:// URL")
    return raw


MIN_METRICS_TOKEN = 32
# A scorer child is a Python interpreter with the plugin imported: below this it cannot start.
MIN_SCORER_MEMORY_MB = 64
# Set by `coop serve --workers N` for its web processes (not meant to be set by hand).
SERVE_NO_JOBS = "COOP_SERVE_NO_JOBS"


def _metrics_token(env: Mapping[str, str]) -> str | None:
    raw = (env.get("COOP_METRICS_TOKEN") or "").strip()
    if not raw:
        return None
    if len(raw) < MIN_METRICS_TOKEN or not raw.isascii() or not raw.isprintable():
        raise ConfigError(
            f"COOP_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} printable ASCII characters"
        )
    return raw


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network | str, ...]:
    """Parse COOP_OUTBOUND_ALLOW: CIDRs become networks, anything else is a host name."""
    items: list[ipaddress.IPv4Network | ipaddress.IPv6Network | str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            items.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            items.append(part.lower())
    return tuple(items)


def _base_url(env: Mapping[str, str], name: str, default: str) -> str:
    """An absolute http(s) base URL without a trailing slash, query or fragment."""
    value = (env.get(name) or default).strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be an absolute http(s) URL, got {value!r}")
    return value


def _percent(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _int(env, name, default, minimum=low)
    if value > high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


# The floor under COOP_GOVERNANCE_MIN_SHARERS: fewer members than this are never aggregated
# (an average over two people tells each of them the other's result).
MIN_SHARERS_FLOOR = 5


@dataclass(frozen=True)
class Settings:
    """Every knob coop reads. Build with `Settings.from_env()`; tests pass overrides."""

    data_dir: Path = Path("var")
    database_url: str = ""
    # Secrets stay out of repr(), so a logged or printed Settings never shows them.
    master_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    issuer: str = "http://127.0.0.1:8000"
    # False when COOP_ISSUER was left unset: `coop serve` then derives it from where it listens.
    issuer_configured: bool = True
    plugins: tuple[str, ...] | None = None
    dev: bool = False
    outbound_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network | str, ...] = ()
    rate_limit: int = 600
    session_idle_seconds: int = 30 * 60
    session_absolute_seconds: int = 12 * 60 * 60
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    max_concurrent_uploads: int = 2
    login_attempts_per_window: int = 10
    login_window_seconds: int = 15 * 60
    scheduler: bool = True
    sync_interval_seconds: int = 6 * 60 * 60
    access_log_retention_days: int = 400
    db_pool_size: int = 5
    redis_url: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    db_connect_timeout: float = 5.0
    db_acquire_timeout: float = 5.0
    db_statement_timeout: float = 15.0
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    github_base_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    bluesky_resolver_url: str = "https://public.api.bsky.app"
    bluesky_plc_url: str = "https://plc.directory"
    # The scorer sandbox (coop.scoring.sandbox_config; docs/plugins/reference.md).
    plugin_path: tuple[str, ...] = ()
    scorer_timeout: float = 10.0
    scorer_cpu_seconds: int = 5
    scorer_memory_mb: int = 512
    scorer_parallel: int = 2
    # None: on, unless `dev` (see `require_isolation`).
    scorer_require_isolation: bool | None = None
    # `coop serve --workers N --no-jobs` tells its web processes through the environment.
    serve_no_jobs: bool = False
    governance: bool = False
    governance_quorum: int = 25
    governance_majority: int = 50
    governance_voting_hours: int = 7 * 24
    governance_min_sharers: int = 10
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("COOP_DATA_DIR") or "var")
        database_url = env.get("COOP_DATABASE_URL") or f"sqlite://{data_dir / 'coop.sqlite3'}"
        issuer = (env.get("COOP_ISSUER") or "http://127.0.0.1:8000").rstrip("/")
        parts = urlsplit(issuer)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ConfigError(f"COOP_ISSUER must be an absolute http(s) URL, got {issuer!r}")
        plugins_raw = env.get("COOP_PLUGINS")
        plugins = (
            None
            if plugins_raw is None
            else tuple(p.strip() for p in plugins_raw.split(",") if p.strip())
        )
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            master_key=env.get("COOP_MASTER_KEY") or None,
            secret_key=env.get("COOP_SECRET_KEY") or None,
            issuer=issuer,
            issuer_configured=bool(env.get("COOP_ISSUER")),
            plugins=plugins,
            dev=_flag(env, "COOP_DEV"),
            outbound_allow=_networks(env.get("COOP_OUTBOUND_ALLOW", "")),
            rate_limit=_int(env, "COOP_RATE_LIMIT", 600),
            session_idle_seconds=_int(env, "COOP_SESSION_IDLE_SECONDS", 30 * 60, minimum=60),
            session_absolute_seconds=_int(
                env, "COOP_SESSION_ABSOLUTE_SECONDS", 12 * 60 * 60, minimum=60
            ),
            max_body_bytes=_int(env, "COOP_MAX_BODY_BYTES", 1024 * 1024, minimum=1024),
            max_upload_bytes=_int(env, "COOP_MAX_UPLOAD_BYTES", 50 * 1024 * 1024, minimum=1024),
            max_concurrent_uploads=_int(env, "COOP_MAX_CONCURRENT_UPLOADS", 2, minimum=1),
            login_attempts_per_window=_int(env, "COOP_LOGIN_ATTEMPTS", 10, minimum=1),
            login_window_seconds=_int(env, "COOP_LOGIN_WINDOW_SECONDS", 15 * 60, minimum=60),
            scheduler=_flag(env, "COOP_SCHEDULER", default=True),
            sync_interval_seconds=_int(env, "COOP_SYNC_INTERVAL_SECONDS", 6 * 60 * 60, minimum=60),
            access_log_retention_days=_int(env, "COOP_ACCESS_LOG_RETENTION_DAYS", 400),
            db_pool_size=_int(env, "COOP_DB_POOL_SIZE", 5, minimum=1),
            redis_url=_redis_url(env),
            metrics_token=_metrics_token(env),
            db_connect_timeout=_seconds(env, "COOP_DB_CONNECT_TIMEOUT", 5.0),
            db_acquire_timeout=_seconds(env, "COOP_DB_ACQUIRE_TIMEOUT", 5.0),
            db_statement_timeout=_seconds(env, "COOP_DB_STATEMENT_TIMEOUT", 15.0),
            github_client_id=(env.get("COOP_GITHUB_CLIENT_ID") or "").strip() or None,
            github_client_secret=(env.get("COOP_GITHUB_CLIENT_SECRET") or "").strip() or None,
            github_base_url=_base_url(env, "COOP_GITHUB_BASE_URL", "https://github.com"),
            github_api_url=_base_url(env, "COOP_GITHUB_API_URL", "https://api.github.com"),
            bluesky_resolver_url=_base_url(
                env, "COOP_BLUESKY_RESOLVER_URL", "https://public.api.bsky.app"
            ),
            bluesky_plc_url=_base_url(env, "COOP_BLUESKY_PLC_URL", "https://plc.directory"),
            plugin_path=_paths(env, "COOP_PLUGIN_PATH"),
            scorer_timeout=_seconds(env, "COOP_SCORER_TIMEOUT", 10.0),
            scorer_cpu_seconds=_int(env, "COOP_SCORER_CPU_SECONDS", 5, minimum=1),
            scorer_memory_mb=_int(env, "COOP_SCORER_MEMORY_MB", 512, minimum=MIN_SCORER_MEMORY_MB),
            scorer_parallel=_int(env, "COOP_SCORER_PARALLEL", 2, minimum=1),
            scorer_require_isolation=(
                None
                if env.get("COOP_SCORER_REQUIRE_ISOLATION") is None
                else _flag(env, "COOP_SCORER_REQUIRE_ISOLATION")
            ),
            serve_no_jobs=_flag(env, SERVE_NO_JOBS),
            governance=_flag(env, "COOP_GOVERNANCE"),
            governance_quorum=_percent(env, "COOP_GOVERNANCE_QUORUM", 25, 1, 100),
            governance_majority=_percent(env, "COOP_GOVERNANCE_MAJORITY", 50, 50, 99),
            governance_voting_hours=_int(env, "COOP_GOVERNANCE_VOTING_HOURS", 7 * 24, minimum=1),
            governance_min_sharers=_int(
                env, "COOP_GOVERNANCE_MIN_SHARERS", 10, minimum=MIN_SHARERS_FLOOR
            ),
            extra={k: v for k, v in env.items() if k.startswith("COOP_")},
        )

    def served_at(self, host: str, port: int) -> Settings:
        """These settings for a server listening on host:port: an unset COOP_ISSUER becomes
        that address, so discovery, redirects and the cross-site guard name the real port. A
        wildcard address names no origin a browser could use, so it needs COOP_ISSUER."""
        if self.issuer_configured:
            return self
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return replace(self, issuer=f"http://{host}:{port}")
        if address.is_unspecified:
            raise ConfigError(
                f"coop serve --host {host} listens on every address: set COOP_ISSUER to the "
                "public URL members and apps use (e.g. https://coop.example)"
            )
        shown = f"[{address}]" if address.version == 6 else str(address)
        return replace(self, issuer=f"http://{shown}:{port}")

    @property
    def require_isolation(self) -> bool:
        """Whether scorers are refused without the sandbox's full isolation: on unless
        COOP_SCORER_REQUIRE_ISOLATION says otherwise or, when unset, with `dev`."""
        if self.scorer_require_isolation is None:
            return not self.dev
        return self.scorer_require_isolation

    @property
    def secure_cookies(self) -> bool:
        """Cookies get `Secure` and the `__Host-` prefix when coop is served over https."""
        return self.issuer.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    def connector_env(self) -> dict[str, str]:
        """The `COOP_*` variables connectors are configured with (`Configurable.configure`):
        the environment these settings were read from, with the variables coop's own
        connectors read (GitHub's, Bluesky's) taken from these settings, so that settings
        built in code configure them too."""
        env = dict(self.extra)
        for name, value in (
            ("COOP_GITHUB_CLIENT_ID", self.github_client_id),
            ("COOP_GITHUB_CLIENT_SECRET", self.github_client_secret),
            ("COOP_GITHUB_BASE_URL", self.github_base_url),
            ("COOP_GITHUB_API_URL", self.github_api_url),
            ("COOP_BLUESKY_RESOLVER_URL", self.bluesky_resolver_url),
            ("COOP_BLUESKY_PLC_URL", self.bluesky_plc_url),
        ):
            if value:
                env[name] = value
            else:
                env.pop(name, None)
        return env

"""Settings: one pydantic-settings root; every value a `RAPPORT_*` variable with a safe default."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAPPORT_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # Proxies whose X-Forwarded-For/-Proto are trusted for the client address (per-IP limits).
    forwarded_allow_ips: str = "127.0.0.1"
    data_dir: Path = DEFAULT_DATA_DIR

    # Data layer. The embedded default is SQLite in `data_dir`; PostgreSQL via postgresql+asyncpg://.
    database_url: str = ""
    db_pool_size: int = 20
    db_max_overflow: int = 0
    db_pool_timeout: float = 10.0
    db_statement_timeout_ms: int = 15000
    db_pgbouncer: bool = False
    sqlite_busy_timeout_ms: int = 15000
    auto_migrate: bool | None = None  # default: on for SQLite, off for PostgreSQL

    redis_url: str = ""
    redis_key_prefix: str = "rapport:"

    # Identity and tokens.
    secret_key: str = ""
    previous_secret_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    invitation_days: int = 7
    allow_signup: bool = True
    auth_cache_seconds: float = 5.0
    api_key_touch_seconds: float = 60.0
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536

    # HTTP contract.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = 5 * 1024 * 1024
    idempotency_hours: int = 24
    idempotency_wait_seconds: float = 10.0

    # Rate limits (the `limits` library's notation: "100/minute", "10 per 15 minutes").
    rate_limit_enabled: bool = True
    rate_limit_default: str = "100/minute"
    rate_limit_auth: str = "10/minute"
    rate_limit_login_account: str = "10/15minutes"
    # When Redis is configured but unreachable: "open" serves without limits, "memory" falls back
    # to per-process limits, "closed" answers 503.
    rate_limit_redis_fallback: Literal["open", "memory", "closed"] = "memory"

    # Background work: the outbox relay and the job scheduler run in every API process unless
    # `background` is off; jobs go through taskiq's in-process broker, or Redis ("auto": when
    # `redis_url` is set) to `rapport worker` processes.
    background: bool = True
    jobs_broker: Literal["auto", "memory", "redis"] = "auto"
    outbox_poll_seconds: float = 1.0
    # PostgreSQL: processes wake each other's relays by LISTEN/NOTIFY (`core.peers`), and one
    # busy with requests leaves batches to an idle one. Off: each process polls for the others'.
    outbox_listen: bool = True
    outbox_batch_size: int = 500
    jobs_poll_seconds: float = 1.0
    # A busy relay or scheduler runs at most once per this interval, so commits are taken in
    # batches rather than a transaction each; an idle one still answers a commit at once.
    background_linger_seconds: float = Field(0.05, ge=0, le=5)
    worker_concurrency: int = 50

    # Realtime stream (`GET /api/v1/ws`): fans committed events out to WebSockets, across
    # processes through Redis pub/sub when `redis_url` is set.
    realtime_heartbeat_seconds: float = Field(25.0, gt=0)  # at least one message this often
    realtime_ticket_seconds: float = Field(30.0, gt=0)  # lifetime of a single-use `?ticket=`
    realtime_send_queue_size: int = Field(1000, ge=1)  # waiting for one client; more closes it
    realtime_send_timeout_seconds: float = Field(10.0, gt=0)  # a write taking longer: peer dead
    realtime_recheck_seconds: float = Field(60.0, gt=0)  # credential re-checked this often

    # CSV imports and exports: files live under `data_dir/imports` and `data_dir/exports` (shared
    # by API processes and workers). A job works in chunks of `import_chunk_rows` (each its own
    # transaction) for at most `import_slice_seconds`, then yields its lease and continues.
    import_max_bytes: int = 512 * 1024 * 1024
    import_chunk_rows: int = Field(1000, ge=1, le=1000)
    import_slice_seconds: float = 60.0
    import_progress_seconds: float = 2.0
    import_max_error_rows: int = 100_000
    export_page_rows: int = Field(1000, ge=1, le=5000)

    # Outgoing webhooks (rapport.webhooks). Targets must be public https URLs: private, loopback,
    # link-local and other internal addresses are refused (when an endpoint is saved and at every
    # connection) unless `webhooks_allow_private` (on-premises receivers, tests), which also allows
    # http://; `webhooks_allow_http` allows http:// to public addresses. Cloud metadata addresses
    # are refused whatever these say.
    webhooks_timeout_seconds: float = Field(10.0, gt=0, le=60)
    webhooks_allow_private: bool = False
    webhooks_allow_http: bool = False

    log_level: str = "INFO"
    log_json: bool = True
    access_log: bool = True
    metrics_enabled: bool = True

    @field_validator("previous_secret_keys", "cors_origins", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'rapport.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def uses_redis_jobs(self) -> bool:
        if self.jobs_broker == "auto":
            return bool(self.redis_url)
        return self.jobs_broker == "redis"

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    def resolved_secret_key(self) -> str:
        """The signing secret: configured, or generated once and kept in the data directory."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""One typed settings object, read once from the environment (and `.env`).

The names of the public settings are fixed (docs/contract.md); the rest are ours and are
listed in the README's settings table.
"""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from service.domain.archive import ArchivePolicy
    from service.domain.changes import Policy
    from service.domain.circuit import Circuit
    from service.edge import EdgeLimits

T = TypeVar("T")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./outpaint-jobs.db"
SIMULATOR_MOUNT = "/simulator"
ADMIN_KEY_NAME = "outpaint-jobs.admin-key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = ""
    modelslab_api_key: str | None = None
    modelslab_base_url: str = "https://modelslab.com/api/v6"

    eta_grace_seconds: float = Field(10.0, ge=0)
    sweep_interval_seconds: float = Field(5.0, gt=0)
    job_timeout_seconds: float = Field(3600.0, gt=0)
    poll_concurrency: int = Field(16, ge=1)
    submit_concurrency: int = Field(8, ge=1)
    webhook_secret: str | None = None
    allow_private_callbacks: bool = False
    log_format: str = Field("console", pattern="^(console|json)$")
    log_level: str = "INFO"

    # Ours (documented in the README).
    lease_seconds: float = Field(60.0, gt=0)
    provider_timeout_seconds: float = Field(20.0, gt=0)
    submit_idle_seconds: float = Field(1.0, gt=0)
    poll_backoff_base_seconds: float = Field(5.0, gt=0)
    poll_backoff_max_seconds: float = Field(300.0, gt=0)
    retry_backoff_base_seconds: float = Field(2.0, gt=0)
    retry_backoff_max_seconds: float = Field(300.0, gt=0)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    provider_max_inflight: int = Field(10, ge=1)
    client_jobs_per_minute: int = Field(600, ge=1)
    client_max_unfinished: int = Field(1000, ge=1)
    poll_rate_per_second: float = Field(10.0, gt=0)
    callback_retry_schedule: str = "0,5,300,1800,7200,18000,36000,36000"
    callback_timeout_seconds: float = Field(15.0, gt=0)
    callback_concurrency: int = Field(8, ge=1)
    callback_secret_grace_hours: float = Field(24.0, ge=0)
    metrics_refresh_seconds: float = Field(5.0, ge=0)
    retention_days: float = Field(30.0, ge=0)  # 0 keeps finished jobs for ever
    retention_interval_seconds: float = Field(3600.0, gt=0)
    stop_grace_seconds: float = Field(10.0, gt=0)
    refresh_interval_seconds: float = Field(5.0, ge=0)
    provider_circuit_threshold: int = Field(5, ge=1)
    provider_circuit_open_seconds: float = Field(2.0, gt=0)
    provider_circuit_max_open_seconds: float = Field(30.0, gt=0)
    webhook_token_grace_hours: float = Field(24.0, ge=0)
    max_waiters: int = Field(1000, ge=0)  # long-polls and event streams per API process
    max_waiters_per_client: int = Field(100, ge=0)  # of those, per client
    # Durable outputs: a directory, s3://bucket/prefix, or none.
    output_store: str = "./outputs"
    output_store_endpoint: str | None = None  # an S3-compatible server's URL (else AWS)
    output_max_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    output_archive_deadline_hours: float = Field(23.0, gt=0)
    output_archive_concurrency: int = Field(4, ge=1)
    output_archive_retry_base_seconds: float = Field(5.0, gt=0)  # doubling, up to 10 min
    output_presign_seconds: float = Field(0.0, ge=0)  # S3: > 0 redirects reads to a signed URL
    series_flush_seconds: float = Field(10.0, gt=0)  # each process adds its counts this often
    # Browsers: origins whose pages may call the API (comma-separated; empty: no CORS), and
    # how long an event link (a key-less URL of one job's event stream) stays valid.
    cors_allow_origins: str = ""
    metrics_token: str | None = None  # when set, /metrics wants `Authorization: Bearer` it
    # The HTTP edge (service/edge.py): how long a request's line and headers, and then its
    # body, may take to arrive; how large its headers may be; connections held per process
    # (0: the descriptor limit less a quarter of it).
    receive_headers_seconds: float = Field(10.0, gt=0)
    receive_body_seconds: float = Field(30.0, gt=0)
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    max_connections: int = Field(0, ge=0)
    # Where `serve` writes the first admin key when its stdout is not a terminal (a file
    # readable by its owner only); default: beside the SQLite database, else ./
    admin_key_file: str | None = None
    event_link_ttl_seconds: float = Field(900.0, gt=0, le=7 * 86400)

    # The built-in simulator (used when MODELSLAB_API_KEY is unset).
    sim_eta_seconds: float = Field(3.0, ge=0)
    sim_webhook_drop_rate: float = Field(0.0, ge=0, le=1)
    sim_webhook_duplicate_rate: float = Field(0.0, ge=0, le=1)
    sim_webhook_delay_seconds: float = Field(0.0, ge=0)
    sim_failure_rate: float = Field(0.0, ge=0, le=1)
    sim_webhook_reorder_rate: float = Field(0.0, ge=0, le=1)
    sim_queue_limit: int = Field(0, ge=0)
    sim_error_rate: float = Field(0.0, ge=0, le=1)
    sim_fetch_delay_seconds: float = Field(0.0, ge=0)
    sim_seed: int | None = None
    # The key the simulator answers. Unset: the mounted simulator makes a random one per
    # process (only this process's own client knows it); `outpaint-jobs simulator` uses
    # "simulator".
    sim_api_key: str | None = None
    # Let the simulator fetch images from, and send webhooks to, private and loopback
    # addresses (tests, and a simulator beside the service on one private network). The
    # mounted simulator always reaches its own service's webhook route.
    sim_allow_private_urls: bool = False

    _process_sim_key: str = PrivateAttr(default_factory=lambda: secrets.token_urlsafe(24))

    @model_validator(mode="after")
    def _lease_covers_calls(self) -> Settings:
        if self.lease_seconds < 2 * self.provider_timeout_seconds:
            raise ValueError(
                "LEASE_SECONDS must be at least twice PROVIDER_TIMEOUT_SECONDS, "
                "so a live claim never expires mid-call"
            )
        return self

    @model_validator(mode="after")
    def _retention_outlives_idempotency(self) -> Settings:
        if 0 < self.retention_days < 1:
            raise ValueError("RETENTION_DAYS must be 0 (keep for ever) or at least 1")
        return self

    @model_validator(mode="after")
    def _schedule_parses(self) -> Settings:
        from service.domain.callbacks import parse_schedule

        parse_schedule(self.callback_retry_schedule)
        return self

    @property
    def callback_schedule(self) -> tuple[float, ...]:
        from service.domain.callbacks import parse_schedule

        return parse_schedule(self.callback_retry_schedule)

    def taken(self, cls: type[T], prefix: str = "", **given: Any) -> T:
        """The dataclass `cls` made of `given` and of the settings named like its other
        fields (after `prefix`); a field no setting names keeps its default."""
        named = {f.name for f in dataclasses.fields(cls)} - given.keys()  # type: ignore[arg-type]
        values = {
            n: getattr(self, prefix + n) for n in named if prefix + n in type(self).model_fields
        }
        return cls(**values, **given)

    @property
    def policy(self) -> Policy:
        """The timing every decision about a job takes (service.domain.changes)."""
        from service.domain.changes import Policy

        return self.taken(Policy)

    def circuit(self) -> Circuit:
        """A new provider circuit with these settings (one per process)."""
        from service.domain.circuit import Circuit

        return self.taken(
            Circuit, "provider_circuit_", probe_seconds=2 * self.provider_timeout_seconds + 5
        )

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_allow_origins.split(",") if o.strip()]

    def edge_limits(self) -> EdgeLimits:
        from service.edge import EdgeLimits

        return EdgeLimits(
            header_seconds=self.receive_headers_seconds,
            body_seconds=self.receive_body_seconds,
            max_header_bytes=self.max_header_bytes,
            max_connections=self.max_connections,
        )

    @property
    def archives_outputs(self) -> bool:
        return self.output_store.strip().lower() != "none"

    def archive_policy(self) -> ArchivePolicy:
        from service.domain.archive import ArchivePolicy

        return ArchivePolicy(
            deadline_seconds=self.output_archive_deadline_hours * 3600,
            retry_base_seconds=self.output_archive_retry_base_seconds,
        )

    @property
    def callback_lease_seconds(self) -> float:
        """A delivery's claim outlives its HTTP call, like a provider call's."""
        return max(self.lease_seconds, 2 * self.callback_timeout_seconds)

    @property
    def base_url(self) -> str:
        """Where ModelsLab (or the simulator) reaches this service."""
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def uses_simulator(self) -> bool:
        return not self.modelslab_api_key

    @property
    def provider_base_url(self) -> str:
        if self.uses_simulator:
            return f"{self.base_url}{SIMULATOR_MOUNT}/api/v6"
        return self.modelslab_base_url.rstrip("/")

    @property
    def provider_key(self) -> str:
        return self.modelslab_api_key or self.simulator_key

    @property
    def simulator_key(self) -> str:
        """The mounted simulator's key: SIM_API_KEY, or this process's random one."""
        return self.sim_api_key or self._process_sim_key

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def admin_key_path(self) -> Path:
        if self.admin_key_file:
            return Path(self.admin_key_file)
        _, _, database = self.database_url.partition(":///")
        if self.is_sqlite and database and not database.startswith(":memory:"):
            return Path(database.split("?", 1)[0]).resolve().parent / ADMIN_KEY_NAME
        return Path(ADMIN_KEY_NAME).resolve()


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; tests pass overrides instead of touching the environment."""
    return Settings(**overrides)  # type: ignore[arg-type]

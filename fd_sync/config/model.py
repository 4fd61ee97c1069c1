"""The validated configuration: frozen dataclasses, all the rest of fd-sync ever sees.

Each key is declared once, in :mod:`fd_sync.config.schema` (type, default, check); a
field here named like its key takes the key's checked value by that name
(:func:`fd_sync.config.schema.build`), and the other fields are what a section's parser
derives. No field has a default: a default cannot drift between the two (a test holds
every field to a key or a derivation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fd_sync.config.urls import proxy_secrets, push_url_secrets
from fd_sync.core.location import LedgerLocation, PostgresLedger
from fd_sync.core.routing import PushFormat, Routing

DEFAULT_CONFIG_PATH = Path("/etc/fd-sync/config.toml")
DEFAULT_DATABASE = Path("/var/lib/fd-sync/fd-sync.db")
DEFAULT_API_URL = "https://api.flashcat.cloud"


@dataclass(frozen=True)
class ServiceNowConfig:
    instance_url: str
    username: str | None
    password: str | None = field(repr=False)
    auth: Literal["basic", "oauth"]
    client_id: str | None
    client_secret: str | None = field(repr=False)
    table: str
    query: str
    page_size: int
    timeout_seconds: float
    max_attempts: int
    extra_fields: tuple[str, ...]  # more incident fields to fetch, for routes to match
    sync_comments: bool  # send the latest additional comment with create/update
    credential_source: str  # where the password/client secret came from, in words
    max_requests_per_hour: int  # fd-sync's own hourly budget; 0: only the instance's


@dataclass(frozen=True)
class FlashdutyConfig:
    push_url: str = field(repr=False)
    push_format: PushFormat
    timeout_seconds: float
    max_attempts: int
    max_requests_per_minute: int
    app_key: str | None = field(repr=False)  # OpenAPI: rules, explain, dispatch
    api_url: str  # from api_domain, for private deployments
    channel_id: int | None
    teams_id: str
    max_openapi_requests_per_minute: int  # shared by every OpenAPI caller


@dataclass(frozen=True)
class SyncConfig:
    database: LedgerLocation  # a SQLite file, or a PostgreSQL ledger shared by several hosts
    lookback_seconds: int
    poll_interval_seconds: int
    stall_seconds: int
    deletion_check_seconds: int
    failover_seconds: int  # PostgreSQL: how soon a standby takes over from a dead leader
    history_days: int  # finished events and write-backs kept for `explain`


@dataclass(frozen=True)
class WritebackConfig:
    """[writeback]: what responders do in Flashduty, written to the ServiceNow incident."""

    enabled: bool
    work_notes: frozenset[str]  # Flashduty event kinds that become work notes
    acknowledge_state: str  # set on a Flashduty ack while the incident is New; "": never
    resolve_state: str  # set when Flashduty closes the incident; "": never
    close_code: str
    close_notes: str  # a template: {closer}, {resolution}, {url}, {number}
    # While Flashduty's OpenAPI cannot be read, updates of tracked alerts wait at most this
    # long (a responder may have closed the alert unseen), then go: an escalation must.
    hold_seconds: int
    assign: str  # "acknowledger", "assignee" or "": who becomes assigned_to in ServiceNow
    severity: bool  # a severity change in Flashduty sets urgency and impact


@dataclass(frozen=True)
class ForwardConfig:
    """[forward]: ServiceNow -> Flashduty beyond the alert events, through the OpenAPI."""

    work_notes: bool  # the desk's work notes become comments on the Flashduty incident
    assignment: bool  # assigned_to changed by a person assigns that member in Flashduty


@dataclass(frozen=True)
class CommandsConfig:
    """[commands]: work notes starting with /flashduty page, list rules, show status."""

    enabled: bool
    allowed_groups: tuple[str, ...]  # empty: whoever may write a work note may command


@dataclass(frozen=True)
class TicketsConfig:
    """[tickets]: incidents born in Flashduty (monitoring alerts) open ServiceNow tickets."""

    enabled: bool
    channel_ids: tuple[int, ...]  # the Flashduty channels whose incidents open tickets
    severities: frozenset[str]
    labels: dict[str, str]  # only incidents whose labels have all of these
    fields: tuple[tuple[str, str], ...]  # [tickets.fields]: incident field -> template
    severity: dict[str, tuple[str, str]]  # [tickets.severity]: severity -> (urgency, impact)


@dataclass(frozen=True)
class MetricsConfig:
    listen: tuple[str, int] | None  # (host, port) of the Prometheus endpoint; None: off


@dataclass(frozen=True)
class HttpConfig:
    """Outbound HTTP for both remotes. TLS verification is always on."""

    ca_bundle: Path | None  # a private CA or a TLS-inspecting proxy's CA
    proxy: str | None = field(repr=False)  # may carry user:password


@dataclass(frozen=True)
class Config:
    path: Path
    servicenow: ServiceNowConfig
    flashduty: FlashdutyConfig
    sync: SyncConfig
    http: HttpConfig
    metrics: MetricsConfig
    warnings: tuple[str, ...]
    routing: Routing
    secret_sources: tuple[tuple[str, str], ...]  # ("[section] key", where it came from)
    writeback: WritebackConfig
    commands: CommandsConfig
    tickets: TicketsConfig
    forward: ForwardConfig

    def secrets(self) -> list[str]:
        """Every secret value this configuration holds, for redaction."""
        sn, fd = self.servicenow, self.flashduty
        values = [sn.password, sn.client_secret, *push_url_secrets(fd.push_url)]
        values.extend(proxy_secrets(self.http.proxy))
        values.append(fd.app_key)
        if isinstance(self.sync.database, PostgresLedger):
            values.append(self.sync.database.password)
        for destination in self.routing.destinations:
            values.extend(push_url_secrets(destination.push_url))
        return [v for v in values if v]

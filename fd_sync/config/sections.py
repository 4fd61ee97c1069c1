"""From a parsed TOML document to a :class:`Config`: each section validated in turn.

:func:`parse` has no side effects beyond reading the secret and CA files the
document names: it registers nothing for redaction (``load`` does) and warns
only through ``Config.warnings``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fd_sync.config.model import (
    DEFAULT_DATABASE,
    CommandsConfig,
    Config,
    FlashdutyConfig,
    ForwardConfig,
    HttpConfig,
    MetricsConfig,
    ServiceNowConfig,
    SyncConfig,
    WritebackConfig,
)
from fd_sync.config.routes import parse_routing, push_url_format
from fd_sync.config.schema import (
    ARRAY_SECTIONS,
    SCHEMA,
    SECRET_FILES,
    Context,
    build,
    check_section,
    check_sections,
    problem,
    resolve_path,
)
from fd_sync.config.secrets import section_secret
from fd_sync.config.tickets import parse_tickets
from fd_sync.core.budget import stretch_warning
from fd_sync.core.incident import (
    OPEN_STATES,
    STATE_NAMES,
    TICKET_FIELDS,
    IncidentState,
    is_closed_state,
)
from fd_sync.core.location import (
    PSYCOPG_MISSING,
    LedgerLocation,
    PostgresLedger,
    is_postgres_url,
    split_postgres_url,
    unsupported_scheme,
)
from fd_sync.core.routing import PushFormat

METRICS_PACKAGE_MISSING = "needs the prometheus-client package: pip install 'fd-sync[metrics]'"


def parse(
    raw: Mapping[str, Any],
    *,
    path: Path,
    env: Mapping[str, str],
    secrets_required: bool = True,
) -> Config:
    """Validate a parsed TOML document into a :class:`Config`."""
    ctx = Context(path, env, secrets_required)
    sections = check_sections(raw, path)
    values: dict[str, dict[str, Any]] = {}
    for name, keys in SCHEMA.items():
        if name in ARRAY_SECTIONS:
            continue
        values[name] = check_section(name, sections.get(name, {}), keys, path)
    for section, key in SECRET_FILES:
        value, origin = section_secret(section, key, values[section], path, env)
        values[section][key] = value
        if value:
            ctx.sources[f"[{section}] {key}"] = origin

    sn = _servicenow(values["servicenow"], ctx)
    fd = _flashduty(values["flashduty"], ctx)
    sync = _sync(values["sync"], ctx)
    http = _http(values["http"], path)
    metrics = _metrics(values["metrics"], ctx)
    routes = parse_routing(values["routing"], raw.get("route", []), sn, fd, ctx)
    writeback = _writeback(values["writeback"], fd, sync.poll_interval_seconds, ctx)
    commands = _commands(values["commands"], fd)
    idle_cost = 2 if commands.enabled or values["forward"]["work_notes"] else 1
    pace = stretch_warning(sn.max_requests_per_hour, sync.poll_interval_seconds, idle_cost)
    ctx.warnings.extend([pace] if pace else [])
    tickets = parse_tickets(values["tickets"], fd, writeback, ctx)
    forward = _forward(values["forward"], fd, ctx)
    if tickets.enabled:
        # The poll reads what tells a ticket apart and what its resolve says.
        extra = tuple(dict.fromkeys((*sn.extra_fields, *TICKET_FIELDS)))
        sn = dataclasses.replace(sn, extra_fields=extra)
    return Config(
        path=path,
        servicenow=sn,
        flashduty=fd,
        sync=sync,
        http=http,
        metrics=metrics,
        warnings=tuple(ctx.warnings),
        routing=routes,
        secret_sources=tuple(ctx.sources.items()),
        writeback=writeback,
        commands=commands,
        tickets=tickets,
        forward=forward,
    )


def _plain_url(value: str, path: Path, section: str, key: str, warnings: list[str]) -> str:
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise problem(
            path, section, key, "must be an https:// URL such as https://acme.service-now.com"
        )
    if parsed.scheme == "http":
        warnings.append(
            f"[{section}] {key} uses http://: credentials travel unencrypted "
            "(accepted for local testing only)"
        )
    return value


def _servicenow(v: dict[str, Any], ctx: Context) -> ServiceNowConfig:
    path, warnings, secrets_required = ctx.path, ctx.warnings, ctx.secrets_required
    if not v["instance_url"]:
        raise problem(
            path, "servicenow", "instance_url", "is required, e.g. https://acme.service-now.com"
        )
    url = _plain_url(v["instance_url"], path, "servicenow", "instance_url", warnings)
    parsed = urllib.parse.urlsplit(url)
    if parsed.path not in ("", "/") or parsed.query:
        raise problem(
            path,
            "servicenow",
            "instance_url",
            f"must be the instance root without a path, e.g. {parsed.scheme}://{parsed.netloc}",
        )
    if v["auth"] == "basic":
        if not v["username"]:
            raise problem(path, "servicenow", "username", 'is required for auth = "basic"')
        if not v["password"] and secrets_required:
            raise problem(
                path,
                "servicenow",
                "password",
                "is required: set password, password_file, or FD_SYNC_SERVICENOW_PASSWORD",
            )
    else:
        if not v["client_id"]:
            raise problem(path, "servicenow", "client_id", 'is required for auth = "oauth"')
        if not v["client_secret"] and secrets_required:
            raise problem(
                path,
                "servicenow",
                "client_secret",
                'is required for auth = "oauth": set client_secret, client_secret_file, '
                "or FD_SYNC_SERVICENOW_CLIENT_SECRET",
            )
        if v["username"] and not v["password"] and secrets_required:
            raise problem(
                path,
                "servicenow",
                "password",
                'is required when username is set with auth = "oauth" (password grant); '
                "remove username to use the client_credentials grant",
            )
    return build(
        ServiceNowConfig,
        v,
        instance_url=f"{parsed.scheme}://{parsed.netloc}",
        query=v["query"].strip(),
        timeout_seconds=float(v["timeout_seconds"]),
        extra_fields=tuple(v["extra_fields"]),
        credential_source="; ".join(
            f"{key.split()[-1]} from {ctx.sources[key]}"
            for key in ("[servicenow] password", "[servicenow] client_secret")
            if key in ctx.sources
        ),
    )


def _flashduty(v: dict[str, Any], ctx: Context) -> FlashdutyConfig:
    path = ctx.path
    push_url: str = v["push_url"] or ""
    fmt: PushFormat = "standard"
    if push_url:
        fmt = push_url_format(
            push_url, "flashduty", ctx, ctx.sources.get("[flashduty] push_url", "")
        )
    elif ctx.secrets_required:
        raise problem(
            path,
            "flashduty",
            "push_url",
            "is required: set push_url, push_url_file, or FD_SYNC_FLASHDUTY_PUSH_URL",
        )
    return build(
        FlashdutyConfig,
        v,
        push_url=push_url,
        push_format=fmt,
        timeout_seconds=float(v["timeout_seconds"]),
        api_url=_api_url(v["api_domain"], ctx.warnings),
    )


def _api_url(api_domain: str, warnings: list[str]) -> str:
    """The OpenAPI's root, from [flashduty] api_domain (a host, or a URL for private
    deployments and the simulators)."""
    domain = api_domain.rstrip("/")
    api_url = domain if "://" in domain else f"https://{domain}"
    if api_url.startswith("http://"):
        warnings.append(
            "[flashduty] api_domain uses http://: the app_key travels unencrypted "
            "(accepted for local testing only)"
        )
    return api_url


# Resolved, Closed: a base instance's data policy wants a close code for these.
CLOSING_STATES = (IncidentState.RESOLVED.value, IncidentState.CLOSED.value)


def _writeback(
    v: dict[str, Any], fd: FlashdutyConfig, poll_interval: int, ctx: Context
) -> WritebackConfig:
    if v["enabled"] and not fd.app_key and ctx.secrets_required:
        raise problem(
            ctx.path,
            "writeback",
            "enabled",
            "needs [flashduty] app_key (or app_key_file, FD_SYNC_FLASHDUTY_APP_KEY) to read "
            "incidents from Flashduty's OpenAPI; set it, or enabled = false",
        )
    ack, resolve = v["acknowledge_state"], v["resolve_state"]
    if ack == IncidentState.NEW.value or is_closed_state(ack):
        raise problem(
            ctx.path,
            "writeback",
            "acknowledge_state",
            f'"{ack}" ({STATE_NAMES[ack]}) is not where an acknowledged incident goes: an ack '
            'moves New to an open state after it, such as "2" (In Progress); or "" for none',
        )
    if resolve in OPEN_STATES:
        raise problem(
            ctx.path,
            "writeback",
            "resolve_state",
            f'"{resolve}" ({STATE_NAMES[resolve]}) is open: a close in Flashduty would move '
            'the incident backwards; use "6" (Resolved), "7" (Closed) or "" for none',
        )
    if v["resolve_state"] in CLOSING_STATES and not v["close_code"].strip():
        raise problem(
            ctx.path,
            "writeback",
            "close_code",
            f'is required when resolve_state is "{v["resolve_state"]}": ServiceNow refuses '
            'to resolve without a resolution code; set e.g. close_code = "Solution provided"',
        )
    for key in ("assign", "severity"):
        if v[key] and not v["enabled"]:
            raise problem(
                ctx.path,
                "writeback",
                key,
                "needs [writeback] enabled = true: it is written with the write-back; "
                "set enabled = true, or remove it",
            )
    hold = v["hold_seconds"]
    return build(
        WritebackConfig,
        v,
        work_notes=frozenset(v["work_notes"]),
        hold_seconds=2 * poll_interval if hold is None else hold,
    )


def _forward(v: dict[str, Any], fd: FlashdutyConfig, ctx: Context) -> ForwardConfig:
    for key in ("work_notes", "assignment"):
        if v[key] and not fd.app_key and ctx.secrets_required:
            raise problem(
                ctx.path,
                "forward",
                key,
                "needs [flashduty] app_key (or app_key_file, FD_SYNC_FLASHDUTY_APP_KEY): "
                "it writes to Flashduty's incidents through the OpenAPI; set it, or false",
            )
    return build(ForwardConfig, v)


def _commands(v: dict[str, Any], fd: FlashdutyConfig) -> CommandsConfig:
    # On by default only with an app key: without the OpenAPI, `rules` and the escalation
    # path a page answers with cannot be read, and a half-working command is a trap.
    enabled = bool(fd.app_key) if v["enabled"] is None else v["enabled"]
    groups = tuple(dict.fromkeys(g.strip() for g in v["allowed_groups"]))
    return build(CommandsConfig, v, enabled=enabled, allowed_groups=groups)


def _http(v: dict[str, Any], path: Path) -> HttpConfig:
    ca_bundle = None
    if v["ca_bundle"]:
        ca_bundle = resolve_path(v["ca_bundle"], path)
        try:
            text = ca_bundle.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise problem(
                path, "http", "ca_bundle", f"cannot read {ca_bundle}: {exc.strerror}"
            ) from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise problem(path, "http", "ca_bundle", f"{ca_bundle} holds no PEM certificate")
    proxy = v["proxy"]
    if proxy:
        parsed = urllib.parse.urlsplit(proxy)
        if parsed.scheme.startswith("socks"):
            # requests needs PySocks for these and would fail only at the first request.
            raise problem(
                path,
                "http",
                "proxy",
                f"{parsed.scheme}:// is not supported: fd-sync speaks to HTTP(S) proxies "
                "(HTTP CONNECT), such as http://proxy:3128",
            )
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise problem(path, "http", "proxy", "must be a URL such as http://proxy:3128")
    return build(HttpConfig, v, ca_bundle=ca_bundle)


def default_database(env: Mapping[str, str]) -> Path:
    """systemd's StateDirectory= when it is set, else the packaged default."""
    state_dirs = env.get("STATE_DIRECTORY")
    if state_dirs:
        return Path(state_dirs.split(":")[0]) / "fd-sync.db"
    return DEFAULT_DATABASE


def _sync(v: dict[str, Any], ctx: Context) -> SyncConfig:
    path = ctx.path
    database: LedgerLocation
    if v["database"] and (wrong := unsupported_scheme(v["database"])):
        raise problem(path, "sync", "database", wrong)
    if v["database"] and is_postgres_url(v["database"]):
        database = _postgres_ledger(v, ctx)
    else:
        database = resolve_path(v["database"], path) if v["database"] else default_database(ctx.env)
    return build(SyncConfig, v, database=database)


def _postgres_ledger(v: dict[str, Any], ctx: Context) -> PostgresLedger:
    try:
        url, inline = split_postgres_url(v["database"])
    except ValueError as exc:
        # The message never quotes the URL: it may carry the password.
        raise problem(ctx.path, "sync", "database", f"not a usable PostgreSQL URL: {exc}") from None
    if inline:
        ctx.warnings.append(
            "[sync] database carries a password: move it to FD_SYNC_DATABASE_PASSWORD, the "
            "database_password credential or [sync] database_password_file"
        )
    if not _installed("psycopg"):
        raise problem(ctx.path, "sync", "database", PSYCOPG_MISSING)
    return PostgresLedger(url, password=v["database_password"] or inline)


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def _metrics(v: dict[str, Any], ctx: Context) -> MetricsConfig:
    path, warnings = ctx.path, ctx.warnings
    if not v["listen"]:
        return MetricsConfig(listen=None)
    host, sep, port = v["listen"].rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise problem(path, "metrics", "listen", 'must be "host:port", e.g. "127.0.0.1:9464"')
    try:
        import prometheus_client  # noqa: F401 - only `fd-sync run` serves metrics
    except ImportError:
        # Every other command must still work, so that the operator can look: a warning
        # here, and `run` refuses to start (fd_sync.service.daemon).
        warnings.append(f"[metrics] listen: {METRICS_PACKAGE_MISSING}; only fd-sync run needs it")
    return MetricsConfig(listen=(host, int(port)))

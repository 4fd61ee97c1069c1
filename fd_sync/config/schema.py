"""What a configuration file may contain: every section, key, type, default and check.

Every default is declared here, once. :func:`check_section` turns one TOML
table into values with defaults filled in, or a :class:`ConfigError` that
names the file, the ``[section] key`` and the fix.
"""

from __future__ import annotations

import difflib
import re
import string
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from fd_sync.config.checks import extra_query_problem
from fd_sync.core import routing, tickets
from fd_sync.core.incident import FIELDS
from fd_sync.errors import ConfigError

_REQUIRED: Any = object()


@dataclass(frozen=True)
class Key:
    """One allowed key: its type, default and extra check (returns a problem or None)."""

    kind: type | tuple[type, ...]
    default: Any = _REQUIRED
    check: Callable[[Any], str | None] | None = None
    secret_env: str | None = None  # environment variable that overrides it
    credential: str | None = None  # systemd credential name that overrides it
    secret: bool = False  # never echo its value (set implicitly by secret_env)


def _int_range(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}"

    return check


def _hourly_budget(value: Any) -> str | None:
    if value == 0 or 60 <= value <= 10_000_000:
        return None
    return (
        "must be 0 (no limit of fd-sync's own) or at least 60 (one request a minute; "
        "ServiceNow rate-limit rules are usually hundreds an hour, e.g. 500)"
    )


def _positive_seconds(high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if 0 < value <= high else f"must be more than 0 and at most {high:g} seconds"

    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else "must be one of " + ", ".join(map(repr, choices))

    return check


def _table_name(value: str) -> str | None:
    if re.fullmatch(r"[a-z0-9_]{1,80}", value):
        return None
    return "must be a ServiceNow table name such as 'incident' (lowercase letters, digits, _)"


def _extra_fields(value: list[Any]) -> str | None:
    for name in value:
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", name):
            return (
                f"must be incident field names such as 'u_service' or 'u_service.name' ({name!r})"
            )
        if name in FIELDS:
            return f"{name!r} is fetched already; remove it"
    if len(set(value)) != len(value):
        return "lists a field twice"
    return None


def _api_domain(value: str) -> str | None:
    url = value if "://" in value else f"https://{value}"
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        return "must be a host name such as api.flashcat.cloud (or an https:// URL)"
    if parsed.path not in ("", "/") or parsed.query:
        return "must be a host name without a path, such as api.flashcat.cloud"
    return None


WORK_NOTE_KINDS = ("ack", "unack", "assign", "comment", "resolve", "reopen", "notify", "severity")
CLOSE_NOTE_FIELDS = ("closer", "resolution", "url", "number")


def _work_notes(value: list[Any]) -> str | None:
    for kind in value:
        if kind not in WORK_NOTE_KINDS:
            return f"{kind!r} is not a Flashduty event kind; use any of " + ", ".join(
                WORK_NOTE_KINDS
            )
    return None


def _state_code(value: str) -> str | None:
    if value == "" or re.fullmatch(r"-?[0-9]{1,4}", value):
        return None
    return 'must be a ServiceNow state value such as "2" or "6", or "" to leave the state alone'


def _close_notes(value: str) -> str | None:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(value)]
    except ValueError as exc:
        return f"is not a valid template ({exc}; write a literal brace as {{{{ or }}}})"
    for name in names:
        if name is not None and name not in CLOSE_NOTE_FIELDS:
            return f"unknown field {{{name}}}; the template may use " + ", ".join(
                f"{{{f}}}" for f in CLOSE_NOTE_FIELDS
            )
    return None


def _group_names(value: list[Any]) -> str | None:
    for name in value:
        if not isinstance(name, str) or not name.strip():
            return f'must be ServiceNow group names such as "Service Desk" ({name!r})'
    return None


SCHEMA: dict[str, dict[str, Key]] = {
    "servicenow": {
        "instance_url": Key(str),
        "username": Key(str, None),
        "password": Key(
            str, None, secret_env="FD_SYNC_SERVICENOW_PASSWORD", credential="servicenow_password"
        ),
        "password_file": Key(str, None),
        "auth": Key(str, "basic", _one_of("basic", "oauth")),
        "client_id": Key(str, None),
        "client_secret": Key(
            str,
            None,
            secret_env="FD_SYNC_SERVICENOW_CLIENT_SECRET",
            credential="servicenow_client_secret",
        ),
        "client_secret_file": Key(str, None),
        "table": Key(str, "incident", _table_name),
        "query": Key(str, "", extra_query_problem),
        "page_size": Key(int, 500, _int_range(1, 10000)),
        "timeout_seconds": Key((int, float), 30.0, _positive_seconds(300)),
        "max_attempts": Key(int, 5, _int_range(1, 20)),
        "extra_fields": Key(list, (), _extra_fields),
        "sync_comments": Key(bool, True),
        "max_requests_per_hour": Key(int, 0, _hourly_budget),
    },
    "flashduty": {
        "push_url": Key(
            str, _REQUIRED, secret_env="FD_SYNC_FLASHDUTY_PUSH_URL", credential="flashduty_push_url"
        ),
        "push_url_file": Key(str, None),
        "timeout_seconds": Key((int, float), 10.0, _positive_seconds(300)),
        "max_attempts": Key(int, 5, _int_range(1, 20)),
        "max_requests_per_minute": Key(int, 1000, _int_range(1, 1000)),
        "app_key": Key(
            str, None, secret_env="FD_SYNC_FLASHDUTY_APP_KEY", credential="flashduty_app_key"
        ),
        "app_key_file": Key(str, None),
        "api_domain": Key(str, "api.flashcat.cloud", _api_domain),
        "channel_id": Key(int, None, _int_range(1, 2**63 - 1)),
        "teams_id": Key(str, ""),
        "max_openapi_requests_per_minute": Key(int, 100, _int_range(1, 1000)),
    },
    "routing": {
        "default": Key(str, routing.SEND, _one_of(routing.SEND, routing.SKIP)),
        "severity_by": Key(str, "urgency", _one_of("urgency", "priority")),
    },
    # The keys of each [[route]] table (an array of tables, checked by _routes).
    "route": {
        "name": Key(str),
        "match": Key(dict, None),
        "skip": Key(bool, False),
        "push_url": Key(str, None, secret=True),
        "push_url_env": Key(str, None),
        "push_url_file": Key(str, None),
        "push_url_credential": Key(str, None),
        "rule_id": Key(str, ""),
        "personal_channels": Key(list, ()),
        "notify_members": Key(list, ()),
        "notify_group_members": Key(bool, False),
        "severity": Key(str, None, _one_of(*routing.SEVERITIES)),
        "labels": Key(dict, None),
        "teams_id": Key(str, None),
        "channel_id": Key(int, None, _int_range(1, 2**63 - 1)),
    },
    "http": {
        "ca_bundle": Key(str, None),
        "proxy": Key(str, None),
    },
    "sync": {
        "database": Key(str, None),
        "database_password": Key(
            str, None, secret_env="FD_SYNC_DATABASE_PASSWORD", credential="database_password"
        ),
        "database_password_file": Key(str, None),
        "failover_seconds": Key(int, 30, _int_range(3, 3600)),
        "lookback_seconds": Key(int, 300, _int_range(0, 86400)),
        "poll_interval_seconds": Key(int, 60, _int_range(1, 86400)),
        "stall_seconds": Key(int, 300, _int_range(1, 86400)),
        "deletion_check_seconds": Key(int, 600, _int_range(0, 86400)),
        "history_days": Key(int, 30, _int_range(1, 3650)),
    },
    "metrics": {
        "listen": Key(str, None),
    },
    "writeback": {
        "enabled": Key(bool, False),
        "work_notes": Key(
            list, ("ack", "unack", "assign", "comment", "resolve", "reopen"), _work_notes
        ),
        "acknowledge_state": Key(str, "", _state_code),
        "resolve_state": Key(str, "", _state_code),
        "close_code": Key(str, ""),
        "close_notes": Key(str, "Resolved in Flashduty by {closer}. {resolution}", _close_notes),
        # Unset: two [sync] poll intervals.
        "hold_seconds": Key(int, None, _int_range(0, 86400)),
        "assign": Key(str, "", _one_of("", "acknowledger", "assignee")),
        "severity": Key(bool, False),
    },
    # ServiceNow -> Flashduty beyond the alert events (needs [flashduty] app_key).
    "forward": {
        "work_notes": Key(bool, False),
        "assignment": Key(bool, False),
    },
    # Tickets from Flashduty: monitoring incidents open ServiceNow incidents.
    "tickets": {
        "enabled": Key(bool, False),
        "channel_ids": Key(list, ()),
        "severities": Key(list, ("Critical", "Warning", "Info")),
        "labels": Key(dict, {}),
        "fields": Key(dict, tickets.DEFAULT_FIELDS),  # [tickets.fields]
        "severity": Key(dict, tickets.DEFAULT_SEVERITY),  # [tickets.severity]
    },
    # Paging from the incident form: work notes that start with /flashduty.
    "commands": {
        "enabled": Key(bool, None),  # unset: on when [flashduty] app_key is set
        "allowed_groups": Key(list, (), _group_names),
    },
}

# Secrets and their *_file companions: (section, key) -> file key.
SECRET_FILES = {
    ("servicenow", "password"): "password_file",
    ("servicenow", "client_secret"): "client_secret_file",
    ("flashduty", "push_url"): "push_url_file",
    ("flashduty", "app_key"): "app_key_file",
    ("sync", "database_password"): "database_password_file",
}
ARRAY_SECTIONS = {"route"}  # [[route]]: an array of tables, each checked against SCHEMA["route"]


def problem(path: Path, section: str, key: str | None, message: str) -> ConfigError:
    # "[[route]] #2 'name'" is already a whole label; other sections get brackets.
    where = section if section.startswith("[[") else f"[{section}]"
    where = f"{where} {key}" if key else where
    return ConfigError(f"{path}: {where}: {message}")


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_sections(raw: Mapping[str, Any], path: Path) -> dict[str, Mapping[str, Any]]:
    known = list(SCHEMA)
    for name, value in raw.items():
        if name not in SCHEMA:
            raise ConfigError(
                f"{path}: unknown section [{name}]{did_you_mean(name, known)}; "
                f"known sections: {', '.join(known)}"
            )
        if name in ARRAY_SECTIONS:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError(f"{path}: {name} must be written as [[{name}]] tables")
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {name} must be a [{name}] table, not a single value")
    return {name: raw[name] for name in raw}


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds:
        return "a number"
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def check_section(
    section: str, given: Mapping[str, Any], keys: Mapping[str, Key], path: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key not in keys:
            raise problem(path, section, key, f"unknown key{did_you_mean(key, list(keys))}")
        spec = keys[key]
        # bool is an int in Python, but `page_size = true` is a mistake.
        if isinstance(value, bool) and bool not in _as_tuple(spec.kind):
            raise problem(path, section, key, f"expected {_type_name(spec.kind)}, got {value!r}")
        if not isinstance(value, spec.kind):
            shown = "a table" if isinstance(value, dict) else repr(value)
            if spec.secret_env or spec.secret:
                shown = "a non-string value"  # never echo what might be a secret
            raise problem(path, section, key, f"expected {_type_name(spec.kind)}, got {shown}")
        if spec.check and (message := spec.check(value)):
            raise problem(path, section, key, f"{message} (got {value!r})")
        out[key] = value
    for key, spec in keys.items():
        if key not in out:
            out[key] = None if spec.default is _REQUIRED else spec.default
    return out


Section = TypeVar("Section")


def build(section: type[Section], values: Mapping[str, Any], **derived: Any) -> Section:
    """A section's dataclass from its checked values: a field named like a key takes that
    key's value, so no key is spelled again; ``derived`` gives every other field (and any
    key the parser converts). A field that is neither is a bug, said at once."""
    names = {f.name for f in fields(section)}  # type: ignore[arg-type]
    unknown = derived.keys() - names
    taken = {n: values[n] for n in names - derived.keys() if n in values}
    missing = names - taken.keys() - derived.keys()
    if unknown or missing:
        raise TypeError(
            f"{section.__name__}: no field {sorted(unknown)}, no value {sorted(missing)}"
        )
    return section(**taken, **derived)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


@dataclass
class Context:
    """What every section needs besides its own values: the file, the environment, and what
    parsing collects on the way (warnings, and where each secret came from)."""

    path: Path
    env: Mapping[str, str]
    secrets_required: bool = True
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # "[section] key" -> its origin


def resolve_path(value: str, config_path: Path) -> Path:
    """A path written in the file: ``~`` expanded, relative to the file, not to the cwd."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else config_path.parent / path

"""The configuration file: where it is, what it may contain, where secrets come from.

Everything is validated here, before any network call, and every problem is a
:class:`ConfigError` that names the file, the ``[section] key`` and the fix.
The rest of fd-sync receives frozen dataclasses and never sees raw TOML.

Secrets (password, client secret, push URL, app key) may come, in this order
of precedence, from an environment variable, a systemd credential
(``$CREDENTIALS_DIRECTORY/<name>``), a ``*_file`` key, or the key itself; the
first that is set wins, so an operator can keep secrets out of the file.
A ``[[route]]`` push URL comes from exactly one of ``push_url``,
``push_url_env``, ``push_url_file`` or ``push_url_credential``.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fd_sync import redaction
from fd_sync.core import routing
from fd_sync.core.decide import DEFAULT_DESTINATION
from fd_sync.core.incident import FIELDS
from fd_sync.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/fd-sync/config.toml")
DEFAULT_DATABASE = Path("/var/lib/fd-sync/fd-sync.db")
CONFIG_ENV = "FD_SYNC_CONFIG"

PushFormat = Literal["servicenow", "standard"]


@dataclass(frozen=True)
class ServiceNowConfig:
    instance_url: str
    username: str | None
    password: str | None = field(repr=False)
    auth: Literal["basic", "oauth"] = "basic"
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    table: str = "incident"
    query: str = ""
    page_size: int = 500
    timeout_seconds: float = 30.0
    max_attempts: int = 5
    extra_fields: tuple[str, ...] = ()  # more incident fields to fetch, for routes to match
    sync_comments: bool = False  # send the latest additional comment with create/update


DEFAULT_API_URL = "https://api.flashcat.cloud"


@dataclass(frozen=True)
class FlashdutyConfig:
    push_url: str = field(repr=False)
    push_format: PushFormat
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    max_requests_per_minute: int = 1000
    app_key: str | None = field(default=None, repr=False)  # OpenAPI: rules, explain, dispatch
    api_url: str = DEFAULT_API_URL  # from api_domain, for private deployments
    channel_id: int | None = None
    teams_id: str = ""


@dataclass(frozen=True)
class SyncConfig:
    database: Path
    lookback_seconds: int = 300
    poll_interval_seconds: int = 60
    stall_seconds: int = 300
    deletion_check_seconds: int = 600


@dataclass(frozen=True)
class MetricsConfig:
    listen: tuple[str, int] | None = None  # (host, port) of the Prometheus endpoint


@dataclass(frozen=True)
class HttpConfig:
    """Outbound HTTP for both remotes. TLS verification is always on."""

    ca_bundle: Path | None = None  # a private CA or a TLS-inspecting proxy's CA
    proxy: str | None = field(default=None, repr=False)  # may carry user:password


@dataclass(frozen=True)
class Config:
    path: Path
    servicenow: ServiceNowConfig
    flashduty: FlashdutyConfig
    sync: SyncConfig
    http: HttpConfig = field(default_factory=HttpConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    warnings: tuple[str, ...] = ()
    routing: routing.Routing = field(default_factory=routing.Routing)

    def secrets(self) -> list[str]:
        """Every secret value this configuration holds, for redaction."""
        sn, fd = self.servicenow, self.flashduty
        values = [sn.password, sn.client_secret, *push_url_secrets(fd.push_url)]
        values.extend(proxy_secrets(self.http.proxy))
        values.append(fd.app_key)
        for destination in self.routing.destinations:
            values.extend(push_url_secrets(destination.push_url))
        return [v for v in values if v]


# --- the schema -----------------------------------------------------------------------

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


def _extra_query(value: str) -> str | None:
    # fd-sync wraps this query into each OR-group of its own keyset query and
    # owns the ordering; ^NQ or ORDERBY here would silently change the scan.
    if "^NQ" in value:
        return "may not contain ^NQ (fd-sync ANDs the query into its own ^NQ groups)"
    if "ORDERBY" in value.upper():
        return "may not contain ORDERBY (fd-sync orders by sys_updated_on, sys_id)"
    if value.startswith("^") or value.endswith("^"):
        return "must not start or end with ^ (fd-sync adds the separators)"
    return None


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
        "query": Key(str, "", _extra_query),
        "page_size": Key(int, 500, _int_range(1, 10000)),
        "timeout_seconds": Key((int, float), 30.0, _positive_seconds(300)),
        "max_attempts": Key(int, 5, _int_range(1, 20)),
        "extra_fields": Key(list, (), _extra_fields),
        "sync_comments": Key(bool, False),
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
        "lookback_seconds": Key(int, 300, _int_range(0, 86400)),
        "poll_interval_seconds": Key(int, 60, _int_range(1, 86400)),
        "stall_seconds": Key(int, 300, _int_range(1, 86400)),
        "deletion_check_seconds": Key(int, 600, _int_range(0, 86400)),
    },
    "metrics": {
        "listen": Key(str, None),
    },
}

# Secrets and their *_file companions: (section, key) -> file key.
_SECRET_FILES = {
    ("servicenow", "password"): "password_file",
    ("servicenow", "client_secret"): "client_secret_file",
    ("flashduty", "push_url"): "push_url_file",
    ("flashduty", "app_key"): "app_key_file",
}
ARRAY_SECTIONS = {"route"}  # [[route]]: an array of tables, each checked against SCHEMA["route"]


# --- loading --------------------------------------------------------------------------


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """--config wins, then $FD_SYNC_CONFIG, then the packaged default location."""
    if explicit:
        return Path(explicit)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load(
    explicit_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    secrets_required: bool = True,
) -> Config:
    """Read, validate and resolve the configuration; register its secrets for redaction.

    ``secrets_required=False`` serves read-only commands such as ``status``,
    which need the ledger's path but no credentials.
    """
    env = os.environ if env is None else env
    path = config_path(explicit_path, env)
    raw = _read_toml(path)
    config = parse(raw, path=path, env=env, secrets_required=secrets_required)
    redaction.register(config.secrets())
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    hint = f"pass --config PATH or set {CONFIG_ENV}; config.example.toml documents every key"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found ({hint})") from None
    except PermissionError:
        raise ConfigError(
            f"{path}: configuration file not readable by this user (check its owner and mode)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file ({hint})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        if "end of document" in message:
            # tomllib gives no line for this case; the last line is where to look.
            message += f" (the file ends at line {len(text.splitlines()) or 1})"
        raise ConfigError(f"{path}: not valid TOML: {message}") from None


def parse(
    raw: Mapping[str, Any],
    *,
    path: Path,
    env: Mapping[str, str],
    secrets_required: bool = True,
) -> Config:
    """Validate a parsed TOML document into a :class:`Config`."""
    warnings: list[str] = []
    sections = _check_sections(raw, path)
    values: dict[str, dict[str, Any]] = {}
    for name, keys in SCHEMA.items():
        if name in ARRAY_SECTIONS:
            continue
        values[name] = _check_section(name, sections.get(name, {}), keys, path)
    for (section, key), file_key in _SECRET_FILES.items():
        spec = SCHEMA[section][key]
        values[section][key] = _resolve_secret(
            section, key, file_key, values[section], spec, path, env
        )
    _warn_if_exposed(path, raw, warnings)

    sn = _servicenow(values["servicenow"], path, warnings, secrets_required)
    fd = _flashduty(values["flashduty"], path, warnings, secrets_required)
    sync = _sync(values["sync"], path, env)
    http = _http(values["http"], path)
    metrics = _metrics(values["metrics"], path)
    routes = _routing(
        values["routing"], raw.get("route", []), sn, fd, path, env, warnings, secrets_required
    )
    return Config(
        path=path,
        servicenow=sn,
        flashduty=fd,
        sync=sync,
        http=http,
        metrics=metrics,
        warnings=tuple(warnings),
        routing=routes,
    )


def _problem(path: Path, section: str, key: str | None, message: str) -> ConfigError:
    # "[[route]] #2 'name'" is already a whole label; other sections get brackets.
    where = section if section.startswith("[[") else f"[{section}]"
    where = f"{where} {key}" if key else where
    return ConfigError(f"{path}: {where}: {message}")


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_sections(raw: Mapping[str, Any], path: Path) -> dict[str, Mapping[str, Any]]:
    known = list(SCHEMA)
    for name, value in raw.items():
        if name not in SCHEMA:
            raise ConfigError(
                f"{path}: unknown section [{name}]{_did_you_mean(name, known)}; "
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


def _check_section(
    section: str, given: Mapping[str, Any], keys: Mapping[str, Key], path: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key not in keys:
            raise _problem(path, section, key, f"unknown key{_did_you_mean(key, list(keys))}")
        spec = keys[key]
        # bool is an int in Python, but `page_size = true` is a mistake.
        if isinstance(value, bool) and bool not in _as_tuple(spec.kind):
            raise _problem(path, section, key, f"expected {_type_name(spec.kind)}, got {value!r}")
        if not isinstance(value, spec.kind):
            shown = "a table" if isinstance(value, dict) else repr(value)
            if spec.secret_env or spec.secret:
                shown = "a non-string value"  # never echo what might be a secret
            raise _problem(path, section, key, f"expected {_type_name(spec.kind)}, got {shown}")
        if spec.check and (message := spec.check(value)):
            raise _problem(path, section, key, f"{message} (got {value!r})")
        out[key] = value
    for key, spec in keys.items():
        if key not in out:
            out[key] = None if spec.default is _REQUIRED else spec.default
    return out


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _resolve_secret(
    section: str,
    key: str,
    file_key: str,
    values: dict[str, Any],
    spec: Key,
    path: Path,
    env: Mapping[str, str],
) -> str | None:
    """Environment, then systemd credential, then *_file, then the inline value."""
    if spec.secret_env and env.get(spec.secret_env):
        return env[spec.secret_env].strip()
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if spec.credential and cred_dir:
        cred = Path(cred_dir) / spec.credential
        if cred.exists():
            return _read_secret_file(cred, path, section, key)
    if values.get(file_key):
        secret_path = Path(values[file_key])
        if not secret_path.is_absolute():
            secret_path = path.parent / secret_path
        return _read_secret_file(secret_path, path, section, file_key)
    return values.get(key)


def _read_secret_file(secret_path: Path, path: Path, section: str, key: str) -> str:
    try:
        text = secret_path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise _problem(path, section, key, f"{secret_path} does not exist") from None
    except PermissionError:
        raise _problem(
            path, section, key, f"{secret_path} is not readable by this user (check owner/mode)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _problem(path, section, key, f"cannot read {secret_path}: {exc}") from None
    if not text:
        raise _problem(path, section, key, f"{secret_path} is empty")
    return text


def _warn_if_exposed(path: Path, raw: Mapping[str, Any], warnings: list[str]) -> None:
    inline = [
        f"[{s}] {k}" for (s, k) in _SECRET_FILES if isinstance(raw.get(s), dict) and k in raw[s]
    ]
    routes = raw.get("route")
    if isinstance(routes, list):
        inline += [
            f"[[route]] {r.get('name')!r} push_url"
            for r in routes
            if isinstance(r, dict) and "push_url" in r
        ]
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if inline and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(
            f"{path} holds {', '.join(inline)} and is readable by other users; "
            f"run: chmod 600 {path} (or move secrets to the environment or *_file keys)"
        )


def _plain_url(value: str, path: Path, section: str, key: str, warnings: list[str]) -> str:
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise _problem(
            path, section, key, "must be an https:// URL such as https://acme.service-now.com"
        )
    if parsed.scheme == "http":
        warnings.append(
            f"[{section}] {key} uses http://: credentials travel unencrypted "
            "(accepted for local testing only)"
        )
    return value


def _servicenow(
    v: dict[str, Any], path: Path, warnings: list[str], secrets_required: bool = True
) -> ServiceNowConfig:
    if not v["instance_url"]:
        raise _problem(
            path, "servicenow", "instance_url", "is required, e.g. https://acme.service-now.com"
        )
    url = _plain_url(v["instance_url"], path, "servicenow", "instance_url", warnings)
    parsed = urllib.parse.urlsplit(url)
    if parsed.path not in ("", "/") or parsed.query:
        raise _problem(
            path,
            "servicenow",
            "instance_url",
            f"must be the instance root without a path, e.g. {parsed.scheme}://{parsed.netloc}",
        )
    if v["auth"] == "basic":
        if not v["username"]:
            raise _problem(path, "servicenow", "username", 'is required for auth = "basic"')
        if not v["password"] and secrets_required:
            raise _problem(
                path,
                "servicenow",
                "password",
                "is required: set password, password_file, or FD_SYNC_SERVICENOW_PASSWORD",
            )
    else:
        if not v["client_id"]:
            raise _problem(path, "servicenow", "client_id", 'is required for auth = "oauth"')
        if not v["client_secret"] and secrets_required:
            raise _problem(
                path,
                "servicenow",
                "client_secret",
                'is required for auth = "oauth": set client_secret, client_secret_file, '
                "or FD_SYNC_SERVICENOW_CLIENT_SECRET",
            )
        if v["username"] and not v["password"] and secrets_required:
            raise _problem(
                path,
                "servicenow",
                "password",
                'is required when username is set with auth = "oauth" (password grant); '
                "remove username to use the client_credentials grant",
            )
    return ServiceNowConfig(
        instance_url=f"{parsed.scheme}://{parsed.netloc}",
        username=v["username"],
        password=v["password"],
        auth=v["auth"],
        client_id=v["client_id"],
        client_secret=v["client_secret"],
        table=v["table"],
        query=v["query"].strip(),
        page_size=v["page_size"],
        timeout_seconds=float(v["timeout_seconds"]),
        max_attempts=v["max_attempts"],
        extra_fields=tuple(v["extra_fields"]),
        sync_comments=v["sync_comments"],
    )


_PUSH_URL_HELP = (
    "must be a Flashduty push URL: https://api.flashcat.cloud/event/push/servicenow/<token> "
    "or https://api.flashcat.cloud/event/push/alert/standard?integration_key=<key>"
)


def push_format(url: str) -> PushFormat | None:
    """Which body a push URL expects, decided by its path; None when it is neither."""
    parsed = urllib.parse.urlsplit(url)
    if re.fullmatch(r"/event/push/servicenow/[^/]+/?", parsed.path):
        return "servicenow"
    query = urllib.parse.parse_qs(parsed.query)
    if parsed.path.rstrip("/") == "/event/push/alert/standard" and query.get("integration_key"):
        return "standard"
    return None


def push_url_secrets(url: str) -> list[str]:
    """The parts of a push URL that let anyone page the company: the whole URL and its key."""
    if not url:
        return []
    parsed = urllib.parse.urlsplit(url)
    found = [url]
    match = re.fullmatch(r"/event/push/servicenow/([^/]+)/?", parsed.path)
    if match:
        found.append(match.group(1))
    found.extend(urllib.parse.parse_qs(parsed.query).get("integration_key", []))
    return found


def _flashduty(
    v: dict[str, Any], path: Path, warnings: list[str], secrets_required: bool = True
) -> FlashdutyConfig:
    openapi = _openapi(v, warnings)
    if not v["push_url"] and not secrets_required:
        return FlashdutyConfig(push_url="", push_format="standard", **openapi)
    if not v["push_url"]:
        raise _problem(
            path,
            "flashduty",
            "push_url",
            "is required: set push_url, push_url_file, or FD_SYNC_FLASHDUTY_PUSH_URL",
        )
    redaction.register(push_url_secrets(v["push_url"]))  # before any message can quote it
    parsed = urllib.parse.urlsplit(v["push_url"])
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise _problem(path, "flashduty", "push_url", _PUSH_URL_HELP)
    fmt = push_format(v["push_url"])
    if fmt is None:
        raise _problem(path, "flashduty", "push_url", _PUSH_URL_HELP)
    if parsed.scheme == "http":
        warnings.append(
            "[flashduty] push_url uses http://: the integration key travels unencrypted "
            "(accepted for local testing only)"
        )
    return FlashdutyConfig(
        push_url=v["push_url"],
        push_format=fmt,
        timeout_seconds=float(v["timeout_seconds"]),
        max_attempts=v["max_attempts"],
        max_requests_per_minute=v["max_requests_per_minute"],
        **openapi,
    )


def _openapi(v: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """The [flashduty] keys of the OpenAPI (escalation rules, names of people)."""
    redaction.register([v["app_key"]])
    domain = v["api_domain"].rstrip("/")
    api_url = domain if "://" in domain else f"https://{domain}"
    if api_url.startswith("http://"):
        warnings.append(
            "[flashduty] api_domain uses http://: the app_key travels unencrypted "
            "(accepted for local testing only)"
        )
    return {
        "app_key": v["app_key"],
        "api_url": api_url,
        "channel_id": v["channel_id"],
        "teams_id": v["teams_id"],
    }


@dataclass
class _Destinations:
    """Push URLs seen so far, each under the one name the outbox will store."""

    default_url: str
    by_url: dict[str, str] = field(default_factory=dict)
    found: list[routing.RouteDestination] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)

    def name_for(self, route_name: str, url: str, fmt: str) -> str:
        if url == self.default_url:
            name = DEFAULT_DESTINATION
        elif url in self.by_url:
            name = self.by_url[url]  # routes sharing a push URL share one destination
        else:
            name = self.by_url[url] = routing.destination_name(route_name)
            self.found.append(routing.RouteDestination(name, url, fmt))
        self.aliases[routing.destination_name(route_name)] = name
        return name


# Keys that make no sense on a route that sends nothing.
_SENDING_KEYS = (
    "push_url",
    "push_url_env",
    "push_url_file",
    "push_url_credential",
    "rule_id",
    "personal_channels",
    "notify_members",
    "notify_group_members",
    "severity",
    "labels",
    "teams_id",
    "channel_id",
)
_ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _routing(
    v: dict[str, Any],
    tables: list[dict[str, Any]],
    sn: ServiceNowConfig,
    fd: FlashdutyConfig,
    path: Path,
    env: Mapping[str, str],
    warnings: list[str],
    secrets_required: bool,
) -> routing.Routing:
    """[routing] and every [[route]], in file order; names unique, match keys known."""
    destinations = _Destinations(fd.push_url)
    routes: list[routing.Route] = []
    seen: set[str] = set()
    for index, table in enumerate(tables, start=1):
        name = table.get("name")
        where = f"[[route]] #{index}" + (f" {name!r}" if isinstance(name, str) else "")
        values = _check_section(where, table, SCHEMA["route"], path)
        if not name or not _ROUTE_NAME.fullmatch(name):
            raise _problem(
                path, where, "name", "is required: letters, digits, '_', '.', '-' (at most 64)"
            )
        if name in seen:
            raise _problem(path, where, "name", "is used by an earlier route; names are unique")
        seen.add(name)
        routes.append(
            _route(values, where, sn, fd, destinations, path, env, warnings, secrets_required)
        )
    default = routing.Route(
        routing.DEFAULT_ROUTE,
        skip=v["default"] == routing.SKIP,
        teams_id=fd.teams_id,
        channel_id=fd.channel_id,
    )
    return routing.Routing(
        routes=tuple(routes),
        default=default,
        severity_by=v["severity_by"],
        destinations=tuple(destinations.found),
        aliases=destinations.aliases,
    )


def _route(
    v: dict[str, Any],
    where: str,
    sn: ServiceNowConfig,
    fd: FlashdutyConfig,
    destinations: _Destinations,
    path: Path,
    env: Mapping[str, str],
    warnings: list[str],
    secrets_required: bool,
) -> routing.Route:
    name = v["name"]
    match = _route_match(v["match"] or {}, where, sn, path)
    if v["skip"]:
        given = [k for k in _SENDING_KEYS if v[k] not in (None, "", (), False)]
        if given:
            raise _problem(
                path, where, given[0], "a skip route sends nothing: remove it, or skip = false"
            )
        return routing.Route(name, match, skip=True)
    destination = DEFAULT_DESTINATION
    url = _route_push_url(v, where, path, env, secrets_required)
    if url:
        redaction.register(push_url_secrets(url))  # before any message can quote it
        fmt = push_format(url)
        if fmt is None or urllib.parse.urlsplit(url).scheme not in ("https", "http"):
            raise _problem(path, where, "push_url", _PUSH_URL_HELP)
        if url.startswith("http://"):
            warnings.append(f"{where} push_url uses http:// (accepted for local testing only)")
        destination = destinations.name_for(name, url, fmt)
    channels = tuple(dict.fromkeys(v["personal_channels"]))
    unknown = [c for c in channels if c not in routing.CHANNELS]
    if unknown:
        raise _problem(
            path,
            where,
            "personal_channels",
            f"unknown channel {unknown[0]!r}; choose from {', '.join(routing.CHANNELS)}",
        )
    members = tuple(v["notify_members"])
    bad = [m for m in members if not isinstance(m, str) or not m.strip() or set(m) & set(",^")]
    if bad:
        raise _problem(
            path, where, "notify_members", "must be ServiceNow emails or user names, e.g. 'bob'"
        )
    return routing.Route(
        name,
        match,
        destination=destination,
        rule_id=v["rule_id"].strip(),
        personal_channels=channels,
        notify_members=tuple(m.strip() for m in members),
        notify_group_members=v["notify_group_members"],
        severity=v["severity"],
        labels=_route_labels(v["labels"] or {}, where, path),
        teams_id=fd.teams_id if v["teams_id"] is None else v["teams_id"],
        channel_id=v["channel_id"] or fd.channel_id,
    )


def _route_match(
    match: dict[str, Any], where: str, sn: ServiceNowConfig, path: Path
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    known = [*routing.MATCH_KEYS, *sn.extra_fields]
    out = []
    for key, raw in match.items():
        if key not in known:
            raise _problem(
                path,
                where,
                "match",
                f"unknown key {key!r}{_did_you_mean(key, known)}; match keys are "
                f"{', '.join(known)} (add other incident fields to [servicenow] extra_fields)",
            )
        values = raw if isinstance(raw, list) else [raw]
        if not values or not all(
            isinstance(x, str | int) and not isinstance(x, bool) for x in values
        ):
            raise _problem(
                path, where, "match", f'{key} must be a list of values, e.g. {key} = ["1", "2"]'
            )
        out.append((key, tuple(str(x).strip() for x in values)))
    return tuple(out)


def _route_labels(labels: dict[str, Any], where: str, path: Path) -> tuple[tuple[str, str], ...]:
    for key, value in labels.items():
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]{0,127}", key):
            raise _problem(
                path,
                where,
                "labels",
                f"{key!r} is not a Flashduty label name ([a-zA-Z_][a-zA-Z0-9_]*)",
            )
        if not isinstance(value, str):
            raise _problem(path, where, "labels", f"{key} must be a string")
    return tuple(labels.items())


def _route_push_url(
    v: dict[str, Any], where: str, path: Path, env: Mapping[str, str], secrets_required: bool
) -> str | None:
    """A route's own push URL from exactly one source, or None for [flashduty] push_url."""
    sources = [
        k for k in ("push_url", "push_url_env", "push_url_file", "push_url_credential") if v[k]
    ]
    if len(sources) > 1:
        raise _problem(path, where, sources[1], f"give only one of {', '.join(sources)}")
    if not sources:
        return None
    source = sources[0]
    if source == "push_url":
        return str(v["push_url"]).strip()
    if source == "push_url_env":
        value = env.get(v["push_url_env"], "").strip()
        if not value and secrets_required:
            raise _problem(
                path, where, source, f"environment variable {v['push_url_env']} is not set"
            )
        return value or None
    if source == "push_url_file":
        secret_path = Path(v["push_url_file"]).expanduser()
        if not secret_path.is_absolute():
            secret_path = path.parent / secret_path
        return _read_secret_file(secret_path, path, where, source)
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if not cred_dir:
        if secrets_required:
            raise _problem(
                path, where, source, "CREDENTIALS_DIRECTORY is not set (systemd LoadCredential=)"
            )
        return None
    return _read_secret_file(Path(cred_dir) / v["push_url_credential"], path, where, source)


def proxy_secrets(proxy: str | None) -> list[str]:
    """The password in a proxy URL such as http://user:pass@proxy:3128, and the URL itself."""
    if not proxy:
        return []
    parsed = urllib.parse.urlsplit(proxy)
    return [proxy, parsed.password] if parsed.password else []


def _http(v: dict[str, Any], path: Path) -> HttpConfig:
    ca_bundle = None
    if v["ca_bundle"]:
        ca_bundle = Path(v["ca_bundle"]).expanduser()
        if not ca_bundle.is_absolute():
            ca_bundle = path.parent / ca_bundle
        try:
            text = ca_bundle.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise _problem(
                path, "http", "ca_bundle", f"cannot read {ca_bundle}: {exc.strerror}"
            ) from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise _problem(path, "http", "ca_bundle", f"{ca_bundle} holds no PEM certificate")
    proxy = v["proxy"]
    if proxy:
        redaction.register(proxy_secrets(proxy))
        parsed = urllib.parse.urlsplit(proxy)
        if parsed.scheme not in ("http", "https", "socks5", "socks5h") or not parsed.hostname:
            raise _problem(path, "http", "proxy", "must be a URL such as http://proxy:3128")
    return HttpConfig(ca_bundle=ca_bundle, proxy=proxy)


def default_database(env: Mapping[str, str]) -> Path:
    """systemd's StateDirectory= when it is set, else the packaged default."""
    state_dirs = env.get("STATE_DIRECTORY")
    if state_dirs:
        return Path(state_dirs.split(":")[0]) / "fd-sync.db"
    return DEFAULT_DATABASE


def _sync(v: dict[str, Any], path: Path, env: Mapping[str, str]) -> SyncConfig:
    if v["database"]:
        database = Path(v["database"]).expanduser()
        if not database.is_absolute():
            database = path.parent / database  # relative to the file, not to the daemon's cwd
    else:
        database = default_database(env)
    return SyncConfig(
        database=database,
        lookback_seconds=v["lookback_seconds"],
        poll_interval_seconds=v["poll_interval_seconds"],
        stall_seconds=v["stall_seconds"],
        deletion_check_seconds=v["deletion_check_seconds"],
    )


def _metrics(v: dict[str, Any], path: Path) -> MetricsConfig:
    if not v["listen"]:
        return MetricsConfig()
    host, sep, port = v["listen"].rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _problem(path, "metrics", "listen", 'must be "host:port", e.g. "127.0.0.1:9464"')
    try:
        import prometheus_client  # noqa: F401 - only needed when metrics are on
    except ImportError:
        raise _problem(
            path,
            "metrics",
            "listen",
            "needs the prometheus-client package: pip install 'fd-sync[metrics]'",
        ) from None
    return MetricsConfig(listen=(host, int(port)))

"""Where each secret comes from: one resolver for every secret key.

A secret may come, in this order of precedence, from an environment variable,
a systemd credential (``$CREDENTIALS_DIRECTORY/<name>``), a ``*_file`` key, or
the key itself; the first that is set wins, so an operator can keep secrets
out of the file. A ``[[route]]`` push URL comes from exactly one of
``push_url``, ``push_url_env``, ``push_url_file`` or ``push_url_credential``.
Values are never echoed: messages name the source, not the secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fd_sync.config.schema import SCHEMA, SECRET_FILES, problem, resolve_path

CREDENTIALS = "CREDENTIALS_DIRECTORY"


@dataclass(frozen=True)
class Source:
    """Where one secret may be found; the first present one wins."""

    env: str | None = None  # an environment variable
    credential: str | None = None  # a systemd credential's name
    file: str | None = None  # a file path, as written in the configuration
    inline: str | None = None  # the value written in the configuration


def resolve(
    source: Source,
    *,
    where: str,
    key: str,
    file_key: str | None = None,
    path: Path,
    env: Mapping[str, str],
) -> tuple[str | None, str]:
    """The secret from the first place that has it (None when none has), and that place in
    words, for every message about the secret. A problem with a file is reported against
    ``file_key`` (the ``*_file`` key), any other against ``key``."""
    label = where if where.startswith("[[") else f"[{where}]"
    if source.env and env.get(source.env):
        return env[source.env].strip(), f"environment variable {source.env}"
    cred_dir = env.get(CREDENTIALS)
    if source.credential and cred_dir:
        cred = Path(cred_dir) / source.credential
        if cred.exists():
            origin = f"systemd credential {source.credential} ({cred})"
            return read_secret_file(cred, path, where, key), origin
    if source.file:
        secret_path = resolve_path(source.file, path)
        origin = f"file {secret_path} ({label} {file_key or key})"
        return read_secret_file(secret_path, path, where, file_key or key), origin
    return source.inline, f"{path}: {label} {key}"


def section_secret(
    section: str, key: str, values: Mapping[str, Any], path: Path, env: Mapping[str, str]
) -> tuple[str | None, str]:
    """A ``[section]`` secret: its variable, its credential, ``<key>_file``, or inline."""
    spec = SCHEMA[section][key]
    file_key = SECRET_FILES[(section, key)]
    source = Source(spec.secret_env, spec.credential, values.get(file_key), values.get(key))
    return resolve(source, where=section, key=key, file_key=file_key, path=path, env=env)


ROUTE_SOURCES = ("push_url", "push_url_env", "push_url_file", "push_url_credential")


def route_push_url(
    v: Mapping[str, Any], where: str, path: Path, env: Mapping[str, str], secrets_required: bool
) -> tuple[str | None, str]:
    """A route's own push URL from exactly one source (None: [flashduty] push_url's), and
    where it came from in words."""
    given = [k for k in ROUTE_SOURCES if v[k]]
    if len(given) > 1:
        raise problem(path, where, given[1], f"give only one of {', '.join(given)}")
    if not given:
        return None, ""
    chosen = given[0]
    if chosen == "push_url":
        return str(v["push_url"]).strip(), f"{path}: {where} push_url"
    if chosen == "push_url_file":
        secret_path = resolve_path(v[chosen], path)
        origin = f"file {secret_path} ({where} {chosen})"
        return read_secret_file(secret_path, path, where, chosen), origin
    if chosen == "push_url_env":
        value = env.get(v[chosen], "").strip()
        if not value and secrets_required:
            raise problem(path, where, chosen, f"environment variable {v[chosen]} is not set")
        return value or None, f"environment variable {v[chosen]} ({where} {chosen})"
    cred_dir = env.get(CREDENTIALS)
    if not cred_dir:
        if secrets_required:
            raise problem(
                path, where, chosen, f"{CREDENTIALS} is not set (systemd LoadCredential=)"
            )
        return None, ""
    cred = Path(cred_dir) / v[chosen]
    origin = f"systemd credential {v[chosen]} ({where} {chosen})"
    return read_secret_file(cred, path, where, chosen), origin


def read_secret_file(secret_path: Path, path: Path, section: str, key: str) -> str:
    try:
        text = secret_path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise problem(path, section, key, f"{secret_path} does not exist") from None
    except PermissionError:
        raise problem(
            path, section, key, f"{secret_path} is not readable by this user (check owner/mode)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise problem(path, section, key, f"cannot read {secret_path}: {exc}") from None
    if not text:
        raise problem(path, section, key, f"{secret_path} is empty")
    return text

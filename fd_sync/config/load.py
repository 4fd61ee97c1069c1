"""Reading the configuration: where the file is, its TOML, and what loading registers.

The I/O half of :mod:`fd_sync.config`: :func:`load` reads the file, hands the
document to the side-effect free :func:`~fd_sync.config.sections.parse`, then
registers every secret for redaction and adds the file-permission warning.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fd_sync import redaction
from fd_sync.config.model import DEFAULT_CONFIG_PATH, Config
from fd_sync.config.schema import SECRET_FILES
from fd_sync.config.sections import parse
from fd_sync.errors import ConfigError

CONFIG_ENV = "FD_SYNC_CONFIG"


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
    exposed = _exposure_warning(path, raw)
    if exposed:
        config = dataclasses.replace(config, warnings=(exposed, *config.warnings))
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
        text = data.decode("utf-8-sig")  # a BOM, as some Windows editors save, is not TOML
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


def _exposure_warning(path: Path, raw: Mapping[str, Any]) -> str | None:
    """A warning when the file holds secrets and others may read it."""
    inline = [
        f"[{s}] {k}" for (s, k) in SECRET_FILES if isinstance(raw.get(s), dict) and k in raw[s]
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
        return None
    if not inline or not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return (
        f"{path} holds {', '.join(inline)} and is readable by other users; "
        f"run: chmod 600 {path} (or move secrets to the environment or *_file keys)"
    )

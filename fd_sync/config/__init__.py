"""The configuration file: where it is, what it may contain, where secrets come from.

Everything is validated before any network call, and every problem is a
:class:`~fd_sync.errors.ConfigError` that names the file, the
``[section] key`` and the fix. The rest of fd-sync receives the frozen
dataclasses of :mod:`~fd_sync.config.model` and never sees raw TOML.

- :mod:`~fd_sync.config.schema`: every section, key, type and default, once;
- :mod:`~fd_sync.config.secrets`: env > systemd credential > ``*_file`` > inline;
- :mod:`~fd_sync.config.urls`: push URLs, and which parts of URLs are secrets;
- :mod:`~fd_sync.config.routes`: ``[routing]`` and ``[[route]]``;
- :mod:`~fd_sync.config.sections`: :func:`parse`, a document into a Config;
- :mod:`~fd_sync.config.load`: :func:`load`, the file into a Config (the I/O).
"""

from fd_sync.config.load import CONFIG_ENV, config_path, load
from fd_sync.config.model import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DATABASE,
    Config,
    FlashdutyConfig,
    HttpConfig,
    MetricsConfig,
    ServiceNowConfig,
    SyncConfig,
    WritebackConfig,
)
from fd_sync.config.schema import SCHEMA
from fd_sync.config.sections import default_database, parse
from fd_sync.config.urls import proxy_secrets, push_format, push_url_secrets

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_DATABASE",
    "SCHEMA",
    "Config",
    "FlashdutyConfig",
    "HttpConfig",
    "MetricsConfig",
    "ServiceNowConfig",
    "SyncConfig",
    "WritebackConfig",
    "config_path",
    "default_database",
    "load",
    "parse",
    "proxy_secrets",
    "push_format",
    "push_url_secrets",
]

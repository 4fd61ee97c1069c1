"""What both halves of the wiring use: the sleep type, the do-nothing defaults, a session."""

from __future__ import annotations

from collections.abc import Callable

import requests

from fd_sync.config import Config
from fd_sync.http.transport import make_session

Sleep = Callable[[float], None]


def never() -> bool:
    return False


def nothing() -> None:
    return None


def session(config: Config) -> requests.Session:
    """A keep-alive session with the operator's CA bundle and proxy."""
    return make_session(ca_bundle=config.http.ca_bundle, proxy=config.http.proxy)

"""Keep secrets out of every byte fd-sync writes.

Secrets are registered once, when the configuration is loaded, and every log
line and every error message passes through :func:`redact` before it leaves
the process. Code should not put secrets in messages in the first place; this
is the net under that rule, for the texts we do not write ourselves (requests'
exception messages quote whole URLs, and a push URL carries its token).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter strings would mask ordinary words; config refuses them anyway


class _Registry:
    """The process's secrets; replaced whole on change, so readers need no lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.secrets: tuple[str, ...] = ()
        self.pattern: re.Pattern[str] | None = None


_registry = _Registry()


def register(values: Iterable[str | None]) -> None:
    """Add secrets to mask from now on (idempotent; longer secrets are matched first)."""
    with _registry.lock:
        known = set(_registry.secrets)
        known.update(v for v in values if v and len(v) >= _MIN_SECRET_LENGTH)
        secrets = tuple(sorted(known, key=len, reverse=True))
        _registry.pattern = re.compile("|".join(re.escape(s) for s in secrets)) if secrets else None
        _registry.secrets = secrets


def redact(text: str) -> str:
    pattern = _registry.pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def redact_value(value: Any) -> Any:
    """Redact strings inside the plain data structures that log events carry."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value

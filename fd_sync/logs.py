"""Logging: structlog to stderr, readable on a terminal, JSON lines elsewhere.

Every event passes through :func:`fd_sync.redaction.redact_value` last, so no
secret reaches a terminal, a file or journald at any level. Every line carries the
process's identity (:func:`identify`: the command's ``run_id``, or the daemon's
``daemon_id``), and each cycle binds its own ``run_id`` (structlog contextvars), so any
line can be picked out of a journal: config warnings, reloads and fetch pauses too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from fd_sync.errors import ConfigError
from fd_sync.redaction import redact_value

if TYPE_CHECKING:
    import types

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("", "json", "console")  # FD_SYNC_LOG_FORMAT; "" (unset) picks by the terminal
_IDENTITY: dict[str, str] = {}  # this process's ids, on every line (threads included)


def identify(**ids: str) -> None:
    """Name this process in every later log line (``run_id=...`` or ``daemon_id=...``)."""
    _IDENTITY.clear()
    _IDENTITY.update(ids)


def identity() -> dict[str, str]:
    return dict(_IDENTITY)


def _add_identity(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in _IDENTITY.items():
        event_dict.setdefault(key, value)
    return event_dict


def _redact(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {key: redact_value(value) for key, value in event_dict.items()}


_PENDING: list[tuple[str, TextIO, bool]] = []  # configure()'s choice, until structlog loads


def _structlog() -> types.ModuleType:
    """structlog, imported on first use: ``--help`` and ``status`` never log, and skip it
    (and the asyncio it imports) at start-up (issue 24). The configuration chosen before
    that is applied then.

    structlog renders console tracebacks with rich when rich is importable, which in a
    developer's environment it is (import-linter brings it) and on a jump host it is not;
    fd-sync keeps its lines the same in both, and skips rich's 40 ms of start-up, by
    hiding rich from structlog's first import only."""
    if "structlog" not in sys.modules and "rich" not in sys.modules:
        sys.modules["rich"] = None  # type: ignore[assignment]  # import rich -> ImportError
        try:
            import structlog
        finally:
            del sys.modules["rich"]
    import structlog

    if _PENDING:
        _apply(structlog, *_PENDING.pop())
    return structlog


def configure(
    level: str = "info", *, stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Choose the level and format (applied when structlog is first needed); ``json=None``
    picks by whether stderr is a TTY. A bad FD_SYNC_LOG_FORMAT is refused now."""
    stream = stream or sys.stderr
    if json is None:
        chosen = os.environ.get("FD_SYNC_LOG_FORMAT", "")
        if chosen not in FORMATS:
            raise ConfigError(
                f"FD_SYNC_LOG_FORMAT={chosen!r} is not a log format: use json or console "
                "(unset: JSON lines, or console lines on a terminal)"
            )
        json = chosen == "json" or (chosen == "" and not stream.isatty())
    _PENDING[:] = [(level, stream, json)]
    if "structlog" in sys.modules:
        _structlog()


def _apply(structlog: types.ModuleType, level: str, stream: TextIO, json: bool) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_identity,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact,
    ]
    if json:
        processors.append(structlog.processors.JSONRenderer(sort_keys=False))
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def bound(**values: str) -> contextlib.AbstractContextManager[None]:
    """These values on every line logged inside the block (a cycle's ``run_id``)."""
    contextvars = _structlog().contextvars
    manager: contextlib.AbstractContextManager[None] = contextvars.bound_contextvars(**values)
    return manager


def get(name: str = "fd-sync") -> Any:
    return _structlog().get_logger(name)


class _ToStructlog(logging.Handler):
    """Libraries log through the standard library; send their lines through ours."""

    def emit(self, record: logging.LogRecord) -> None:
        get(record.name).log(record.levelno, record.getMessage(), library=record.name)


def route_stdlib_logging(level: int = logging.WARNING) -> None:
    root = logging.getLogger()
    root.handlers[:] = [_ToStructlog()]
    root.setLevel(level)

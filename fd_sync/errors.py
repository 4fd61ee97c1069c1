"""Why a run stopped: one exception tree with the exit code attached, and the code table.

Operators, cron wrappers and systemd (``RestartPreventExitStatus=78``) act on
the exit code, so every expected failure is an :class:`FdSyncError` whose class
fixes the code (sysexits.h numbers). Its message is one line that names the
thing that failed and the fix, and never contains a secret: the CLI prints it
as it is, without a traceback.

The tree has a temporary family (try again later: 75) and the families that
need a person (76 refused, 77 credentials, 78 configuration), as singer-sdk
separates retriable from fatal errors. Exchanges with a remote fail as
:class:`APIError` first (transport level: status, code, request id); the
clients turn those into the operator-facing classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

EX_OK = 0
EX_USAGE = 64  # bad command line (click usage errors), or names something that does not exist
EX_SOFTWARE = 70  # a bug: an unexpected exception
EX_TEMPFAIL = 75  # try again later; nothing is lost
EX_PROTOCOL = 76  # a remote refused for good
EX_NOPERM = 77  # a remote refused our credentials
EX_CONFIG = 78  # the configuration must be fixed

# What each exit code is called in the runs table, `status` and the cycle log.
OUTCOMES = {
    EX_OK: "ok",
    EX_TEMPFAIL: "temporary failure",
    EX_PROTOCOL: "refused",
    EX_NOPERM: "access denied",
    EX_CONFIG: "configuration",
}
# Which of several outcomes a run reports: the one that needs the most attention.
_SEVERITY = [EX_OK, EX_TEMPFAIL, EX_PROTOCOL, EX_NOPERM, EX_CONFIG, EX_USAGE, EX_SOFTWARE]


def worst(codes: Iterable[int]) -> int:
    """The exit code of several outcomes: configuration beats credentials beats a
    refusal beats a temporary failure, so the operator fixes what blocks most first."""
    rank = {code: i for i, code in enumerate(_SEVERITY)}
    return max(codes, key=lambda code: rank.get(code, len(rank)), default=EX_OK)


def outcome(code: int) -> str:
    return OUTCOMES.get(code, "failed")


class FdSyncError(Exception):
    """An expected failure: the message is for the operator, the code for the caller."""

    exit_code = EX_SOFTWARE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


# --- try again later (75) -------------------------------------------------------------


class TemporaryFailure(FdSyncError):
    """A remote or a local resource is unavailable now; the next run continues."""

    exit_code = EX_TEMPFAIL


class LockBusy(TemporaryFailure):
    """Another fd-sync process holds the ledger."""


class Interrupted(TemporaryFailure):
    """A stop was requested (SIGTERM, SIGINT); the work left is safe for the next cycle."""


class BudgetSpent(TemporaryFailure):
    """A request would overdraw an API's budget ([servicenow] max_requests_per_hour, the
    instance's rate-limit rule): it waits for the next cycle instead of causing a 429."""


# --- a person must act (76, 77, 78, 64) -------------------------------------------------


class RemoteRejected(FdSyncError):
    """A remote answered that the request itself is wrong (a 4xx other than auth)."""

    exit_code = EX_PROTOCOL


class NotFound(RemoteRejected):
    """Flashduty answered ResourceNotFound: the channel, rule or person does not exist."""


class BadRecord(FdSyncError):
    """A row that cannot be synced; the message says why, for the quarantine log."""

    exit_code = EX_PROTOCOL


class AccessDenied(FdSyncError):
    """A remote refused the integration user or key (401/403): retrying risks a lock-out."""

    exit_code = EX_NOPERM


class ConfigError(FdSyncError):
    """The configuration cannot work as written; retrying will not help."""

    exit_code = EX_CONFIG


class UsageRefused(FdSyncError):
    """The command names something that does not exist (an incident, group, user or rule),
    or asks for something that needs an explicit flag (dispatching a closed incident)."""

    exit_code = EX_USAGE


# --- the ledger -------------------------------------------------------------------------


class StorageError(FdSyncError):
    """The ledger cannot be used. Catch this to stop acting on a ledger; raise a subclass."""


class StorageUnavailable(StorageError, TemporaryFailure):
    """Full disk, a lock held by another process, an I/O error: nothing is lost."""


class StorageUnusable(StorageError, ConfigError):
    """Not writable, corrupt, or written by a newer fd-sync: the operator must act."""


# --- exchanges with a remote (transport level) -----------------------------------------


class APIError(FdSyncError):
    """A failed exchange, described without secrets (never the URL, which may hold a token)."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code
        self.detail = detail
        self.request_id = request_id
        self.retry_after = retry_after


class RetriableAPIError(APIError):
    """Asking again later may succeed. ``retry=False``: not within this run."""

    exit_code = EX_TEMPFAIL

    def __init__(self, reason: str, *, retry: bool = True, **kwargs: Any) -> None:
        super().__init__(reason, **kwargs)
        self.retry = retry


class FatalAPIError(APIError):
    """The remote refused the request itself; repeating it cannot help."""

    exit_code = EX_PROTOCOL

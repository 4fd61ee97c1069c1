"""Why a run stopped, as a small typed hierarchy with the exit code attached.

Operators, cron wrappers and systemd (``RestartPreventExitStatus=78``) act on
the exit code, so every expected failure is an :class:`FdSyncError` whose class
fixes the code (sysexits.h numbers). Its message is one line that names the
thing that failed and the fix, and never contains a secret: the CLI prints it
as it is, without a traceback.
"""

from __future__ import annotations

EX_OK = 0
EX_USAGE = 64  # bad command line (click usage errors)
EX_SOFTWARE = 70  # a bug: an unexpected exception
EX_TEMPFAIL = 75  # try again later; nothing is lost
EX_PROTOCOL = 76  # a remote refused for good
EX_NOPERM = 77  # ServiceNow refused our credentials
EX_CONFIG = 78  # the configuration must be fixed


class FdSyncError(Exception):
    """An expected failure: the message is for the operator, the code for the caller."""

    exit_code = EX_SOFTWARE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(FdSyncError):
    """The configuration cannot work as written; retrying will not help."""

    exit_code = EX_CONFIG


class TemporaryFailure(FdSyncError):
    """A remote or a local resource is unavailable now; the next run continues."""

    exit_code = EX_TEMPFAIL


class LockBusy(TemporaryFailure):
    """Another fd-sync process holds the ledger."""


class Interrupted(TemporaryFailure):
    """A stop was requested (SIGTERM, SIGINT); the work left is safe for the next cycle."""


class RemoteRejected(FdSyncError):
    """A remote answered that the request itself is wrong (a 4xx other than auth)."""

    exit_code = EX_PROTOCOL


class AccessDenied(FdSyncError):
    """ServiceNow refused the integration user (401/403): retrying risks locking the account."""

    exit_code = EX_NOPERM


class StorageError(FdSyncError):
    """The ledger file cannot be used: full disk and locks are temporary, corruption is not."""

    exit_code = EX_TEMPFAIL

"""The ``fd-sync`` command: click only, over the library.

Each command turns options into library calls and results into text. Exit
codes are the contract with operators, cron and systemd (see the README):
0 ok, 64 usage, 70 bug, 75 temporary failure, 76 refused by a remote,
77 credentials, 78 configuration. An expected failure prints one line,
``fd-sync: <what failed and the fix>``, never a traceback: :func:`main` is the
one place where exceptions become exit codes.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

import click

from fd_sync.cli import (  # noqa: F401 - they register commands
    incident_commands,
    ledger_commands,
    sync_commands,
    ticket_commands,
)
from fd_sync.cli.base import cli, print_error
from fd_sync.errors import EX_SOFTWARE, EX_USAGE, FdSyncError
from fd_sync.redaction import redact

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> NoReturn:
    try:
        result = cli.main(args=argv, prog_name="fd-sync", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Abort:
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = EX_USAGE if exc.exit_code == 2 else exc.exit_code
    except FdSyncError as exc:
        print_error(exc)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except Exception:
        # A bug, not an expected failure: keep the traceback, but never a secret.
        click.echo(redact(traceback.format_exc()), err=True)
        click.echo(
            "fd-sync: internal error (a bug); please report it with the lines above", err=True
        )
        code = EX_SOFTWARE
    sys.exit(code)

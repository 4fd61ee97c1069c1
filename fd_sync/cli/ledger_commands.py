"""``fd-sync ledger copy``: move the ledger between SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import click

from fd_sync import redaction
from fd_sync.cli.base import Options, cli, echo, ledger_access, load_config
from fd_sync.errors import UsageRefused

TARGET_PASSWORD_ENV = "FD_SYNC_TARGET_DATABASE_PASSWORD"


@cli.group()
def ledger() -> None:
    """The ledger itself: copy it to another engine (SQLite <-> PostgreSQL)."""


@ledger.command("copy")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL_OR_PATH",
    help="An empty ledger to fill: a SQLite path or a postgresql:// URL (its password from "
    f"${TARGET_PASSWORD_ENV} or libpq's own: ~/.pgpass, PGPASSFILE).",
)
@click.pass_obj
def ledger_copy(options: Options, target: str) -> int:
    """Copy the configured ledger (under its lock: stop nothing, the daemon waits) into an
    empty one: incidents, outbox with dead events and errors, state, runs, quarantine,
    write-backs; ids kept, counts verified on both sides."""
    from fd_sync.core.location import (
        LedgerLocation,
        PostgresLedger,
        is_postgres_url,
        split_postgres_url,
    )
    from fd_sync.store import backends
    from fd_sync.store.copy import copy_ledger

    cfg = load_config(options, secrets_required=False)
    destination: LedgerLocation
    if is_postgres_url(target):
        try:
            url, inline = split_postgres_url(target)
        except ValueError as exc:
            raise click.BadParameter(f"not a usable PostgreSQL URL: {exc}") from None
        password = os.environ.get(TARGET_PASSWORD_ENV) or inline
        redaction.register([password])
        destination = PostgresLedger(url, password=password)
    else:
        destination = Path(target).expanduser().absolute()
    if str(destination) == str(cfg.sync.database):
        raise UsageRefused(f"{destination}: is the configured ledger; copy it somewhere else")
    with ledger_access(cfg, "write") as source:
        target_db = backends.connect(destination, migrate=False)
        try:
            with target_db.run_lock(wait_seconds=0):
                target_db.migrate()
                copied = copy_ledger(source.db, target_db)
        finally:
            target_db.close()
    echo(
        [
            f"copied {copied.line()} from {cfg.sync.database} to {destination}; "
            "counts verified on both",
            f'next: set [sync] database = "{destination}" and restart fd-sync',
        ]
    )
    return 0

"""``fd-sync ledger copy``: move the ledger between SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import click

from fd_sync import redaction
from fd_sync.cli.base import Options, cli, echo, ledger_access, load_config
from fd_sync.errors import ConfigError, LockBusy, UsageRefused

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
    """Copy the configured ledger, with the daemon stopped, into an empty one: incidents,
    outbox with dead events and errors, state, runs, quarantine, write-backs; ids kept,
    counts verified on both sides. A running daemon would go on changing the ledger
    after the copy, and the copy would then send and write again: it is refused."""
    from fd_sync.core.location import (
        LedgerLocation,
        PostgresLedger,
        is_postgres_url,
        split_postgres_url,
        unsupported_scheme,
    )
    from fd_sync.ops.status import live_daemon
    from fd_sync.store import backends
    from fd_sync.store.copy import copy_ledger

    cfg = load_config(options, secrets_required=False)
    destination: LedgerLocation
    if wrong := unsupported_scheme(target):
        raise ConfigError(f"--to: {wrong}")
    if is_postgres_url(target):
        try:
            url, inline = split_postgres_url(target)
        except ValueError as exc:
            raise click.BadParameter(f"not a usable PostgreSQL URL: {exc}") from None
        password = os.environ.get(TARGET_PASSWORD_ENV) or inline
        redaction.register([password])
        destination = PostgresLedger(url, password=password)
    else:
        destination = Path(target).expanduser().resolve()
    source_at = cfg.sync.database
    if isinstance(source_at, Path):
        if not source_at.exists():
            raise UsageRefused(
                f"{source_at}: no ledger to copy (the configured [sync] database does not "
                "exist); point --config at the fd-sync whose ledger you mean to move"
            )
        if destination == source_at.resolve():
            raise UsageRefused(f"{destination}: is the configured ledger; copy it somewhere else")
    else:
        if str(destination) == str(source_at):
            raise UsageRefused(f"{destination}: is the configured ledger; copy it somewhere else")
        probe = backends.connect(source_at, readonly=True, allow_empty=True)
        try:
            if not probe.has_schema:
                raise UsageRefused(
                    f"{source_at}: no ledger to copy (no fd-sync schema there); point "
                    "--config at the fd-sync whose ledger you mean to move"
                )
        finally:
            probe.close()
    with ledger_access(cfg, "write") as source:
        running = live_daemon(source)
        if running is not None:
            raise LockBusy(
                f"{source_at}: fd-sync run (pid {running.process}) is using this ledger and "
                "would go on changing it after the copy: stop it first (systemctl stop "
                "fd-sync, on every host), copy, switch [sync] database, then start it again"
            )
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

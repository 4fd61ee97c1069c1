"""``fd-sync ledger copy``: move the ledger between SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import click

from fd_sync import redaction
from fd_sync.cli.base import Options, cli, echo, ledger_access, load_config
from fd_sync.core.location import (
    LedgerLocation,
    PostgresLedger,
    is_postgres_url,
    split_postgres_url,
    unsupported_scheme,
)
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
    from fd_sync.ops.status import live_daemon
    from fd_sync.store import backends
    from fd_sync.store.copy import copy_ledger

    cfg = load_config(options, secrets_required=False)
    destination = _target(target)
    source_at = cfg.sync.database
    _refuse_a_source_that_is_not_one(source_at, destination)
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


def _target(target: str) -> LedgerLocation:
    """--to as a ledger location; a URL that is not PostgreSQL's is refused, never a file."""
    if wrong := unsupported_scheme(target):
        raise ConfigError(f"--to: {wrong}")
    if not is_postgres_url(target):
        return Path(target).expanduser().resolve()
    try:
        url, inline = split_postgres_url(target)
    except ValueError as exc:
        raise click.BadParameter(f"not a usable PostgreSQL URL: {exc}") from None
    password = os.environ.get(TARGET_PASSWORD_ENV) or inline
    redaction.register([password])
    return PostgresLedger(url, password=password)


def _refuse_a_source_that_is_not_one(source: LedgerLocation, destination: LedgerLocation) -> None:
    """Copying a ledger that does not exist copies nothing, and switching to the copy as
    the output says would throw the real state away; copying onto itself is a mistake."""
    from fd_sync.store import backends

    missing = (
        "no ledger to copy ({why}); point --config at the fd-sync whose ledger you mean to move"
    )
    same = f"{destination}: is the configured ledger; copy it somewhere else"
    if isinstance(source, Path):
        if not source.exists():
            raise UsageRefused(f"{source}: " + missing.format(why="the file does not exist"))
        if destination == source.resolve():
            raise UsageRefused(same)
        return
    if str(destination) == str(source):
        raise UsageRefused(same)
    probe = backends.connect(source, readonly=True, allow_empty=True)
    try:
        if not probe.has_schema:
            raise UsageRefused(f"{source}: " + missing.format(why="no fd-sync schema there"))
    finally:
        probe.close()

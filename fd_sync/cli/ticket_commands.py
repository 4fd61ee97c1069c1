"""``fd-sync tickets``: tickets from Flashduty, beyond what each cycle does."""

from __future__ import annotations

import time

import click

from fd_sync import logs
from fd_sync.cli.base import Options, cli, dry_run_option, ledger_access, load_config, print_error
from fd_sync.errors import EX_PROTOCOL, ConfigError, FdSyncError, worst


@cli.group()
def tickets() -> None:
    """Tickets from Flashduty: monitoring incidents that open ServiceNow incidents."""


@tickets.command("backfill")
@click.option(
    "--since",
    metavar="WHEN",
    required=True,
    help="Open tickets for the watched channels' incidents open now that started since "
    "WHEN (ISO-8601 date or date-time, UTC unless it has an offset; at most 31 days a "
    "request, any span in all).",
)
@dry_run_option("List the tickets it would open; create nothing, change nothing.")
@click.option("--quiet", is_flag=True, help="No progress line on a terminal.")
@click.pass_obj
def backfill(options: Options, since: str, dry_run: bool, quiet: bool) -> int:
    """Open tickets for incidents that were already open before the first run with
    [tickets] on (which takes only incidents starting after it). Each incident gets one
    ticket, however often this runs."""
    from fd_sync import wiring
    from fd_sync.core.watermark import parse_since
    from fd_sync.sync.tickets import TicketsReport

    try:
        since_at = parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    cfg = load_config(options)
    if not cfg.tickets.enabled:
        raise ConfigError(
            f"{cfg.path}: [tickets] enabled is not true: set it, with channel_ids, to open "
            "tickets from Flashduty"
        )
    from fd_sync.cli.progress import wanted

    report = TicketsReport()

    def progress(done: int, of: int) -> None:
        click.echo(f"\rtickets backfill: {done} of {of} created or found\033[K", err=True, nl=False)

    with ledger_access(cfg, "preview" if dry_run else "write") as ledger:
        work = wiring.tickets(cfg, ledger, wiring.servicenow_client(cfg))
        if work is None:  # enabled was checked above; wiring builds nothing otherwise
            raise ConfigError(f"{cfg.path}: [tickets] is not enabled")
        work.backfill(
            report,
            since=int(since_at.timestamp()),
            now=int(time.time()),
            run_id=logs.identity().get("run_id") or "backfill",
            dry_run=dry_run,
            progress=progress if wanted(quiet) else None,
        )
    if wanted(quiet) and report.queued:
        click.echo("\r\033[K", err=True, nl=False)
    for line in report.planned:
        click.echo(line)
    verb = "would open" if dry_run else "opened"
    count = report.queued if dry_run else report.opened
    click.echo(
        f"{report.found} open incident(s) in the watched channels; {verb} {count} ticket(s)"
        + ("" if dry_run else f", {len(report.refused)} refused")
    )
    problems = [str(r) for r in report.refused[:3]]
    if report.error is not None:
        problems.insert(0, str(report.error))
    if problems:
        code = worst(
            [report.error.exit_code if report.error else 0, EX_PROTOCOL if report.refused else 0]
        )
        print_error(FdSyncError("; ".join(problems), exit_code=code))
        return code
    return 0

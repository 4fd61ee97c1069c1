"""The commands that run and watch the sync: once, run, check, status, outbox, demo."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fd_sync import logs
from fd_sync.cli.base import (
    Options,
    cli,
    dry_run_option,
    echo,
    json_option,
    ledger_access,
    load_config,
    print_error,
    stop_on_signals,
)
from fd_sync.errors import (
    EX_PROTOCOL,
    EX_TEMPFAIL,
    FdSyncError,
    RemoteRejected,
    StorageUnusable,
    worst,
)


@cli.command()
@click.option(
    "--since",
    metavar="WHEN",
    help="Backfill: push every incident open among those changed since WHEN "
    "(ISO-8601 date or date-time, UTC unless it has an offset).",
)
@dry_run_option(
    "Fetch and reconcile, print the events that would be sent; "
    "change neither Flashduty nor the ledger."
)
@click.option(
    "--quiet",
    is_flag=True,
    help="No progress line on a terminal during a backfill (it is off when stderr is not one).",
)
@click.pass_obj
def once(options: Options, since: str | None, dry_run: bool, quiet: bool) -> int:
    """Run one cycle: fetch changed incidents, reconcile, deliver. For cron and backfills.

    Without --since, the very first run records the current state of ServiceNow
    without sending anything: only changes made after installation page anyone.
    """
    from fd_sync import wiring
    from fd_sync.core.watermark import parse_since
    from fd_sync.http.transport import interruptible_sleep
    from fd_sync.store.backends.sqlite import write_problem

    try:
        since_at = parse_since(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    cfg = load_config(options)
    stop = stop_on_signals()
    from fd_sync.cli.progress import BackfillProgress, wanted

    shown: BackfillProgress | None = None
    with ledger_access(cfg, "preview" if dry_run else "write") as ledger:
        if since_at is not None and wanted(quiet):
            shown = BackfillProgress(lambda: cycle.current, since=since_at)
        cycle = wiring.cycle(
            cfg,
            ledger,
            sleep=interruptible_sleep(stop),
            should_stop=stop.is_set,
            progress=shown or (lambda: None),
        )
        try:
            report = cycle.run(
                since=since_at,
                dry_run=dry_run,
                command="once",
                run_id=logs.identity().get("run_id"),
            )
        finally:
            if shown is not None:
                shown.done()
    for planned in report.planned:
        click.echo(planned.line())
    for line in report.commands.planned:
        click.echo(line)
    for line in report.writeback.planned:
        click.echo(line)
    for line in report.tickets.planned:
        click.echo(line)
    click.echo(report.summary())
    failure = report.failure()
    if failure is not None:
        print_error(failure)
    database = cfg.sync.database
    if dry_run and isinstance(database, Path) and (problem := write_problem(database)):
        # The dry run read and decided; the real one would fail at its first write.
        print_error(StorageUnusable(f"a real run would fail: {problem}"))
        return worst([report.exit_code, StorageUnusable.exit_code])
    return report.exit_code


@cli.command()
@click.pass_obj
def run(options: Options) -> int:
    """Run as a service: a cycle every [sync] poll_interval_seconds until SIGTERM.

    Speaks systemd's notify protocol (READY=1, STATUS=, WATCHDOG=1) when started by
    systemd. SIGHUP reloads the configuration (a broken file is reported and the old
    one keeps running); SIGTERM or SIGINT finish the work in progress and exit 0.
    """
    from fd_sync.service import daemon

    return daemon.run(load_config(options), config_path=options.config_path)


@cli.command()
@click.option(
    "--send-test",
    is_flag=True,
    help="Also push one clearly labelled test alert to Flashduty and resolve it.",
)
@click.pass_obj
def check(options: Options, send_test: bool) -> int:
    """Check the configuration and every hop to ServiceNow and Flashduty, with hints.

    Reports DNS, TCP, TLS, credentials, read access, a one-row query and the clocks
    for ServiceNow, then the Flashduty push endpoint, one line each. Creates nothing
    in Flashduty unless --send-test is given. Exits 0 only if everything passed.
    """
    from fd_sync.ops.check import run_check

    return run_check(load_config(options), send_test=send_test, echo=click.echo)


@cli.group()
def outbox() -> None:
    """See and act on events waiting for Flashduty and write-backs waiting for ServiceNow
    (shown as w12): list, retry dead ones, drop."""


@outbox.command("list")
@click.option("--dead", is_flag=True, help="Only events Flashduty refused for good.")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Include delivered, cancelled and dropped events (most recent first).",
)
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, 100000),
    help="At most this many events.",
)
@json_option("One JSON object per line.")
@click.pass_obj
def outbox_list(options: Options, dead: bool, show_all: bool, limit: int, as_json: bool) -> int:
    """List pending (and with --dead, dead) events with their last error and request id."""
    from fd_sync.ops import outbox as ops

    with ledger_access(load_config(options, secrets_required=False), "read") as ledger:
        events = ops.waiting(ledger, dead_only=dead, show_all=show_all, limit=limit)
        hold = ledger.writeback_hold()
    for event in events:
        click.echo(json.dumps(ops.as_json(event)) if as_json else ops.line(event, hold))
    if not events and not as_json:
        click.echo("no events" + (" that are dead" if dead else " waiting"))
    return 0


@outbox.command("retry")
@click.argument("event_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Requeue every dead event and write-back.")
@click.pass_obj
def outbox_retry(options: Options, event_id: str | None, retry_all: bool) -> int:
    """Requeue a dead event or write-back (w12), or --all of them; the next cycle sends
    them, in order."""
    from fd_sync.ops import outbox as ops

    if (event_id is None) == (not retry_all):
        raise click.UsageError("give an event ID or --all")
    prefix, number = ops.parse_id(event_id) if event_id is not None else ("", None)
    with ledger_access(load_config(options, secrets_required=False), "write") as ledger:
        counts: dict[str, int] = {}
        cancelled = 0
        for queue in ledger.queues:
            if retry_all or queue.label_prefix == prefix:
                counts[queue.label_prefix], moot = ops.retry(ledger, queue, number)
                cancelled += moot
    if "" in counts:
        click.echo(f"requeued {counts['']} event(s); the next cycle delivers them")
    if counts.get("w") or prefix == "w":
        click.echo(
            f"requeued {counts['w']} write-back(s); the next cycle writes them to ServiceNow"
        )
    if counts.get("t") or prefix == "t":
        click.echo(f"requeued {counts['t']} ticket create(s); the next cycle opens them")
    if counts.get("f") or prefix == "f":
        click.echo(f"requeued {counts['f']} Flashduty write(s); the next cycle sends them")
    if cancelled:
        click.echo(
            f"cancelled {cancelled} event(s) of alerts Flashduty never had, whose incidents "
            "closed meanwhile: nothing is paged for them"
        )
    return 0


@outbox.command("drop")
@click.argument("event_id")
@click.pass_obj
def outbox_drop(options: Options, event_id: str) -> int:
    """Give up on one pending or dead event. Dropping a create drops its whole alert.

    Its queued events go too and the incident counts as having no alert: its next
    change in ServiceNow opens a new one. Dropping a resolve leaves the alert open in
    Flashduty: resolve it there. A write-back (w12) is dropped alone: it is not written.
    """
    from fd_sync.ops import outbox as ops

    prefix, number = ops.parse_id(event_id)
    with ledger_access(load_config(options, secrets_required=False), "write") as ledger:
        event, count, notes = ops.drop(ledger, ops.queue_of(ledger, prefix), number)
    if prefix:
        noun = ops.NOUNS[prefix]
        click.echo(f"dropped {noun} {event.label} of {event.number}: it is not sent")
        return 0
    click.echo(f"dropped {count} event(s) of {event.number}")
    for note in notes:
        click.echo(note)
    return 0


@cli.command()
@json_option("Print the status as one JSON object.")
@click.option(
    "--check",
    "health_check",
    is_flag=True,
    help="Exit 76 while anything is dead (refused for good: someone was not paged), else 75 "
    "when the last successful cycle is older than 3 poll intervals (for monitoring).",
)
@click.pass_obj
def status(options: Options, as_json: bool, health_check: bool) -> int:
    """Show the watermark, tracked incidents, open alerts, the outbox and the last run."""
    from fd_sync.ops.status import read_status, render

    cfg = load_config(options, secrets_required=False)
    with ledger_access(cfg, "read") as ledger:
        found = read_status(
            ledger,
            cfg.sync.poll_interval_seconds,
            writeback_enabled=cfg.writeback.enabled,
            commands_enabled=cfg.commands.enabled,
            tickets_enabled=cfg.tickets.enabled,
        )
    if as_json:
        click.echo(json.dumps(found.as_json(), indent=2))
    else:
        echo(render(found))
    if health_check and found.summary.dead:
        print_error(RemoteRejected(f"unhealthy: {found.health}"))
        return EX_PROTOCOL
    if health_check and not found.healthy:
        print_error(FdSyncError(f"unhealthy: {found.health}"))
        return EX_TEMPFAIL
    return 0


@cli.command()
@click.option(
    "--cycles",
    default=6,
    show_default=True,
    type=click.IntRange(1, 20),
    help="How many poll cycles to show.",
)
def demo(cycles: int) -> int:
    """Watch incidents flow through simulated ServiceNow and Flashduty on loopback.

    Needs no credentials and no network: starts a Table API simulator and a
    Flashduty receiver on 127.0.0.1, seeds incidents, and runs real cycles while
    incidents open, change and resolve, printing what Flashduty receives.
    """
    from fd_sync.ops.demo import run_demo

    return run_demo(cycles=cycles, echo=click.echo)

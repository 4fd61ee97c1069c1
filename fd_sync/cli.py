"""The ``fd-sync`` command: a thin click layer over the library.

Each command turns options into library calls and results into text. Exit
codes are the contract with operators, cron and systemd (see the README):
0 ok, 64 usage, 70 bug, 75 temporary failure, 76 refused by a remote,
77 ServiceNow credentials or ACL, 78 configuration. An expected failure
prints one line, ``fd-sync: <what failed and the fix>``, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from fd_sync import __version__, logs
from fd_sync.errors import EX_SOFTWARE, EX_USAGE, FdSyncError
from fd_sync.redaction import redact


@dataclass
class Options:
    config_path: str | None
    log_level: str


def _load_config(options: Options, *, secrets_required: bool = True) -> Any:
    from fd_sync import config as config_module

    cfg = config_module.load(options.config_path, secrets_required=secrets_required)
    log = logs.get("config")
    for warning in cfg.warnings:
        log.warning("config_warning", path=str(cfg.path), warning=warning)
    return cfg


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Configuration file [default: $FD_SYNC_CONFIG, else /etc/fd-sync/config.toml].",
)
@click.option(
    "--log-level",
    type=click.Choice(logs.LEVELS),
    default=lambda: os.environ.get("FD_SYNC_LOG_LEVEL", "info"),
    show_default="info, or $FD_SYNC_LOG_LEVEL",
    help="Least severe log lines to print (on stderr).",
)
@click.version_option(__version__, prog_name="fd-sync")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str) -> None:
    """Mirror ServiceNow incidents into Flashduty alerts, polling from outside the firewall.

    fd-sync reads changed incidents from the ServiceNow Table API, keeps a SQLite
    ledger of what it has sent, and pushes create, update and resolve events to a
    Flashduty integration, so that Flashduty's open alerts mirror ServiceNow's open
    incidents.
    """
    logs.configure(log_level)
    ctx.obj = Options(config_path=config_path, log_level=log_level)


@cli.command()
@click.option(
    "--since",
    metavar="WHEN",
    help="Backfill: push every incident open among those changed since WHEN "
    "(ISO-8601 date or date-time, UTC unless it has an offset).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Fetch and reconcile, print the events that would be sent; "
    "change neither Flashduty nor the ledger.",
)
@click.pass_obj
def once(options: Options, since: str | None, dry_run: bool) -> int:
    """Run one cycle: fetch changed incidents, reconcile, deliver. For cron and backfills.

    Without --since, the very first run records the current state of ServiceNow
    without sending anything: only changes made after installation page anyone.
    """
    from fd_sync import app
    from fd_sync.cycle import Cycle
    from fd_sync.ledger import Ledger
    from fd_sync.lock import RunLock
    from fd_sync.watermark import parse_since

    try:
        since_at = parse_since(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    cfg = _load_config(options)
    database = cfg.sync.database
    if dry_run:
        ledger = Ledger(database, readonly=True) if database.exists() else Ledger.scratch()
        with ledger:
            cycle = Cycle(cfg, ledger, app.servicenow_client(cfg), app.destinations(cfg))
            report = cycle.run(since=since_at, dry_run=True)
        for planned in report.planned:
            click.echo(planned.line())
    else:
        with RunLock(database), Ledger(database) as ledger:
            cycle = Cycle(cfg, ledger, app.servicenow_client(cfg), app.destinations(cfg))
            report = cycle.run(since=since_at, command="once")
    click.echo(report.summary())
    if report.error is not None:
        _print_error(report.error)
    elif report.exit_code:
        reasons = [f"Flashduty ({n}) unavailable: {why}" for n, why in report.delivery.down.items()]
        if report.dead or report.held:
            reasons.append(
                f"{report.dead} dead event(s) refused by Flashduty and {report.held} held "
                "behind them; see fd-sync status"
            )
        _print_error(FdSyncError("; ".join(reasons) or report.outcome))
    return report.exit_code


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@click.pass_obj
def status(options: Options, as_json: bool) -> int:
    """Show the watermark, tracked incidents, open alerts, the outbox and the last run."""
    from fd_sync.ledger import Ledger

    cfg = _load_config(options, secrets_required=False)
    with Ledger(cfg.sync.database, readonly=True) as ledger:
        summary = ledger.summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return 0
    outbox = summary["outbox"]
    last = summary["last_run"]
    lines = [
        ("ledger", summary["database"]),
        ("watermark", f"{summary['watermark']} UTC" if summary["watermark"] else "none yet"),
        (
            "incidents",
            f"{summary['incidents_tracked']} tracked, {summary['open_alerts']} with an open alert",
        ),
        (
            "outbox",
            f"{outbox['pending']} pending, {outbox['dead']} dead, "
            f"{outbox['blocked']} held behind dead, {outbox['delivered']} delivered",
        ),
        ("quarantined", f"{summary['quarantined']} bad row(s)"),
        (
            "last run",
            (
                f"{last['started_at']} {last['command']}: {last['outcome'] or 'running'}"
                f" (exit {last['exit_code']})"
                if last
                else "never"
            ),
        ),
    ]
    if last and last.get("message") and last["exit_code"]:
        lines.append(("last error", last["message"]))
    lines.append(("last success", summary["last_success_at"] or "never"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"{key:<{width}}  {value}")
    return 0


@cli.command()
@click.option(
    "--cycles",
    default=4,
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
    from fd_sync.demo import run_demo

    return run_demo(cycles=cycles, echo=click.echo)


def _print_error(exc: BaseException) -> None:
    click.echo(f"fd-sync: {redact(str(exc))}", err=True)


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
        _print_error(exc)
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

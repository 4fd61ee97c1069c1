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
import re
import sys
import traceback
import uuid
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


def _echo(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(redact(line))


def _number(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value):
        raise click.BadParameter("expected an incident number such as INC0010001")
    return value


def _channels(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    if value is None:
        return None
    from fd_sync.routing import CHANNELS

    chosen = tuple(dict.fromkeys(c.strip().lower() for c in value.split(",") if c.strip()))
    unknown = [c for c in chosen if c not in CHANNELS]
    if unknown:
        raise click.BadParameter(
            f"unknown channel {unknown[0]!r}; choose from {','.join(CHANNELS)}"
        )
    return chosen


@cli.command()
@click.argument("number", callback=_number)
@click.option(
    "--group",
    metavar="NAME",
    help="Assignment group to send, by name (and whose members --group-members notifies).",
)
@click.option(
    "--members",
    metavar="LIST",
    help="ServiceNow users to notify, by email or "
    "user_name, comma-separated; replaces the route's.",
)
@click.option(
    "--group-members",
    is_flag=True,
    help="Notify every active member of the assignment group (the dialog's select-all).",
)
@click.option(
    "--channels",
    metavar="LIST",
    callback=_channels,
    help="Personal channels, comma-separated: sms, voice, teams, email; replaces the route's.",
)
@click.option("--rule", "rule_id", metavar="RULE_ID", help="Escalation rule id.")
@click.option(
    "--rule-name",
    metavar="NAME",
    help="Escalation rule by name, looked up in the "
    "channel through the OpenAPI (needs [flashduty] app_key and channel_id).",
)
@click.option(
    "--severity",
    type=click.Choice(["Critical", "Warning", "Info"], case_sensitive=False),
    help="Severity; replaces the route's or the mapping's.",
)
@click.option(
    "--force", is_flag=True, help="Dispatch even a resolved, closed or canceled incident."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the route, the choices and the exact bodies; send and record nothing.",
)
@click.pass_obj
def dispatch(
    options: Options,
    number: str,
    group: str | None,
    members: str | None,
    group_members: bool,
    channels: tuple[str, ...] | None,
    rule_id: str | None,
    rule_name: str | None,
    severity: str | None,
    force: bool,
    dry_run: bool,
) -> int:
    """Send one incident to Flashduty now, like fd-servicenow's "Send to Flashduty" dialog.

    Builds what the incident's route would send, with the flags overriding it,
    delivers it at once (behind earlier events of the same incident) and
    prints Flashduty's request id. The incident is then pinned: its updates
    and its resolve follow it to where it was sent, whatever the routes say,
    until it closes.
    """
    from fd_sync import app
    from fd_sync.dispatch import Choices, Dispatcher, describe_plan, describe_sent, dumps, failure
    from fd_sync.enrich import Lookups
    from fd_sync.ledger import Ledger
    from fd_sync.lock import RunLock

    if rule_id and rule_name:
        raise click.UsageError("--rule and --rule-name exclude each other")
    choices = Choices(
        group=group,
        members=None
        if members is None
        else tuple(m.strip() for m in members.split(",") if m.strip()),
        group_members=group_members,
        channels=channels,
        rule_id=rule_id,
        rule_name=rule_name,
        severity=severity.capitalize() if severity else None,
        force=force,
    )
    cfg = _load_config(options)
    lookups = Lookups(app.servicenow_client(cfg))
    destinations = app.destinations(cfg)

    def openapi() -> Any:
        return app.openapi_client(cfg, purpose="--rule-name")

    database = cfg.sync.database
    if dry_run:
        ledger = Ledger(database, readonly=True) if database.exists() else Ledger.scratch()
        with ledger:
            dispatcher = Dispatcher(cfg, ledger, lookups, destinations, openapi=openapi)
            plan = dispatcher.plan(number, choices)
            _echo(describe_plan(plan, destinations[plan.route.destination].push_format))
            for kind, where, body in dispatcher.bodies(plan):
                _echo([f"would send {kind} to {where}:", *dumps(body).splitlines()])
        return 0
    with RunLock(database), Ledger(database) as ledger:
        dispatcher = Dispatcher(cfg, ledger, lookups, destinations, openapi=openapi)
        plan = dispatcher.plan(number, choices)
        sent = dispatcher.send(plan, run_id=uuid.uuid4().hex[:12])
    push_format = destinations[plan.route.destination].push_format
    _echo(describe_plan(plan, push_format) + describe_sent(sent))
    error = failure(sent)
    if error is not None:
        _print_error(error)
        return error.exit_code
    return 0


@cli.command()
@click.option(
    "--channel",
    "channel_id",
    type=click.IntRange(1),
    metavar="ID",
    help="Channel id [default: [flashduty] channel_id].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the rules as one JSON object.")
@click.pass_obj
def rules(options: Options, channel_id: int | None, as_json: bool) -> int:
    """Show a channel's enabled escalation rules: each layer's persons, teams and schedules
    by name, when it starts, and the channels used per severity."""
    from fd_sync import app, escalation
    from fd_sync.errors import ConfigError

    cfg = _load_config(options, secrets_required=False)
    channel_id = channel_id or cfg.flashduty.channel_id
    if channel_id is None:
        raise ConfigError(
            f"{cfg.path}: [flashduty] channel_id is not set: set it, or pass --channel ID"
        )
    client = app.openapi_client(cfg, purpose="fd-sync rules")
    found = escalation.load_rules(client, channel_id)
    name = escalation.channel_name(client, channel_id)
    if as_json:
        click.echo(
            json.dumps(escalation.as_json(found, channel_id=channel_id, name=name), indent=2)
        )
    else:
        _echo(escalation.render(found, channel_id=channel_id, name=name).splitlines())
    return 0


@cli.command()
@click.argument("number", callback=_number)
@click.pass_obj
def explain(options: Options, number: str) -> int:
    """Show which route an incident matches and why, the exact payload its next change
    would send, and the escalation path Flashduty would follow. Changes nothing."""
    from fd_sync import app
    from fd_sync.enrich import Lookups
    from fd_sync.explain import explain as explain_incident
    from fd_sync.ledger import Ledger

    cfg = _load_config(options)
    database = cfg.sync.database
    ledger = Ledger(database, readonly=True) if database.exists() else Ledger.scratch()

    def openapi() -> Any:
        return app.openapi_client(cfg, purpose="fd-sync explain")

    with ledger:
        lines = explain_incident(
            cfg,
            ledger,
            Lookups(app.servicenow_client(cfg)),
            app.destinations(cfg),
            number,
            openapi=openapi if cfg.flashduty.app_key else None,
        )
    _echo(lines)
    return 0


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

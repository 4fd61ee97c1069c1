"""The ``fd-sync`` command: click only, over the library.

Each command turns options into library calls and results into text. Exit
codes are the contract with operators, cron and systemd (see the README):
0 ok, 64 usage, 70 bug, 75 temporary failure, 76 refused by a remote,
77 credentials, 78 configuration. An expected failure prints one line,
``fd-sync: <what failed and the fix>``, never a traceback: :func:`main` is the
one place where exceptions become exit codes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

import click

from fd_sync import __version__, logs
from fd_sync.errors import EX_SOFTWARE, EX_TEMPFAIL, EX_USAGE, FdSyncError
from fd_sync.redaction import redact

if TYPE_CHECKING:  # the CLI imports the library lazily: start-up time of every command
    from fd_sync.config import Config
    from fd_sync.store.ledger import Ledger

F = TypeVar("F", bound=Callable[..., Any])
Access = Literal["read", "preview", "write"]


@dataclass
class Options:
    config_path: str | None
    log_level: str


def _load_config(options: Options, *, secrets_required: bool = True) -> Config:
    from fd_sync import config as config_module

    cfg = config_module.load(options.config_path, secrets_required=secrets_required)
    log = logs.get("config")
    for warning in cfg.warnings:
        log.warning("config_warning", path=str(cfg.path), warning=warning)
    return cfg


@contextlib.contextmanager
def _ledger(cfg: Config, access: Access) -> Iterator[Ledger]:
    """The ledger as a command needs it: ``read`` (status: it must exist), ``preview``
    (dry runs: read-only, or empty before the first run) or ``write`` (under the run lock)."""
    from fd_sync.store.ledger import Ledger
    from fd_sync.store.lock import RunLock

    database = cfg.sync.database
    if access == "write":
        with RunLock(database), Ledger(database) as ledger:
            yield ledger
    else:
        opened = (
            Ledger(database, readonly=True) if access == "read" else Ledger.for_reading(database)
        )
        with opened as ledger:
            yield ledger


def json_option(help: str) -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help)


def dry_run_option(help: str) -> Callable[[F], F]:
    return click.option("--dry-run", is_flag=True, help=help)


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
@dry_run_option(
    "Fetch and reconcile, print the events that would be sent; "
    "change neither Flashduty nor the ledger."
)
@click.pass_obj
def once(options: Options, since: str | None, dry_run: bool) -> int:
    """Run one cycle: fetch changed incidents, reconcile, deliver. For cron and backfills.

    Without --since, the very first run records the current state of ServiceNow
    without sending anything: only changes made after installation page anyone.
    """
    from fd_sync import wiring
    from fd_sync.core.watermark import parse_since
    from fd_sync.http.transport import interruptible_sleep

    try:
        since_at = parse_since(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    cfg = _load_config(options)
    stop = _stop_on_signals()
    with _ledger(cfg, "preview" if dry_run else "write") as ledger:
        cycle = wiring.cycle(cfg, ledger, sleep=interruptible_sleep(stop), should_stop=stop.is_set)
        report = cycle.run(since=since_at, dry_run=dry_run, command="once")
    for planned in report.planned:
        click.echo(planned.line())
    click.echo(report.summary())
    failure = report.failure()
    if failure is not None:
        _print_error(failure)
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

    return daemon.run(_load_config(options), config_path=options.config_path)


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

    return run_check(_load_config(options), send_test=send_test, echo=click.echo)


@cli.group()
def outbox() -> None:
    """See and act on events waiting for Flashduty: list, retry dead ones, drop."""


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

    with _ledger(_load_config(options, secrets_required=False), "read") as ledger:
        events = ops.waiting(ledger, dead_only=dead, show_all=show_all, limit=limit)
    for event in events:
        click.echo(json.dumps(ops.as_json(event)) if as_json else ops.line(event))
    if not events and not as_json:
        click.echo("no events" + (" that are dead" if dead else " waiting"))
    return 0


@outbox.command("retry")
@click.argument("event_id", type=int, required=False)
@click.option("--all", "retry_all", is_flag=True, help="Requeue every dead event.")
@click.pass_obj
def outbox_retry(options: Options, event_id: int | None, retry_all: bool) -> int:
    """Requeue a dead event (or --all of them); the next cycle sends them, in order."""
    from fd_sync.ops import outbox as ops

    if (event_id is None) == (not retry_all):
        raise click.UsageError("give an event ID or --all")
    with _ledger(_load_config(options, secrets_required=False), "write") as ledger:
        count = ops.retry(ledger, event_id)
    click.echo(f"requeued {count} event(s); the next cycle delivers them")
    return 0


@outbox.command("drop")
@click.argument("event_id", type=int)
@click.pass_obj
def outbox_drop(options: Options, event_id: int) -> int:
    """Give up on one pending or dead event. Dropping a create drops its whole alert.

    Its queued events go too and the incident counts as having no alert: its next
    change in ServiceNow opens a new one. Dropping a resolve leaves the alert open in
    Flashduty: resolve it there.
    """
    from fd_sync.ops import outbox as ops

    with _ledger(_load_config(options, secrets_required=False), "write") as ledger:
        event, count, notes = ops.drop(ledger, event_id)
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
    help="Exit 75 when the last successful cycle is older than 3 poll intervals (for monitoring).",
)
@click.pass_obj
def status(options: Options, as_json: bool, health_check: bool) -> int:
    """Show the watermark, tracked incidents, open alerts, the outbox and the last run."""
    from fd_sync.ops.status import read_status, render

    cfg = _load_config(options, secrets_required=False)
    with _ledger(cfg, "read") as ledger:
        found = read_status(ledger, cfg.sync.poll_interval_seconds)
    if as_json:
        click.echo(json.dumps(found.as_json(), indent=2))
    else:
        _echo(render(found))
    if health_check and not found.healthy:
        _print_error(FdSyncError(f"unhealthy: {found.health}"))
        return EX_TEMPFAIL
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
    from fd_sync.ops.demo import run_demo

    return run_demo(cycles=cycles, echo=click.echo)


def _number(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value):
        raise click.BadParameter("expected an incident number such as INC0010001")
    return value


def _channels(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    if value is None:
        return None
    from fd_sync.core.routing import CHANNELS

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
@dry_run_option("Print the route, the choices and the exact bodies; send and record nothing.")
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
    from fd_sync import wiring
    from fd_sync.ops.dispatch import describe_plan, describe_sent, dumps, failure
    from fd_sync.sync.dispatch import Choices

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
    with _ledger(cfg, "preview" if dry_run else "write") as ledger:
        dispatcher = wiring.dispatcher(cfg, ledger)
        plan = dispatcher.plan(number, choices)
        described = describe_plan(plan, dispatcher.destinations[plan.route.destination].push_format)
        if dry_run:
            _echo(described)
            for kind, where, body in dispatcher.bodies(plan):
                _echo([f"would send {kind} to {where}:", *dumps(body).splitlines()])
            return 0
        sent = dispatcher.send(plan, run_id=uuid.uuid4().hex[:12])
    _echo(described + describe_sent(sent))
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
@json_option("Print the rules as one JSON object.")
@click.pass_obj
def rules(options: Options, channel_id: int | None, as_json: bool) -> int:
    """Show a channel's enabled escalation rules: each layer's persons, teams and schedules
    by name, when it starts, and the channels used per severity."""
    from fd_sync import wiring
    from fd_sync.errors import ConfigError
    from fd_sync.flashduty import escalation

    cfg = _load_config(options, secrets_required=False)
    channel_id = channel_id or cfg.flashduty.channel_id
    if channel_id is None:
        raise ConfigError(
            f"{cfg.path}: [flashduty] channel_id is not set: set it, or pass --channel ID"
        )
    client = wiring.openapi_client(cfg, purpose="fd-sync rules")
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
    from fd_sync import wiring
    from fd_sync.ops.explain import explain as explain_incident

    cfg = _load_config(options)

    def openapi() -> Any:
        return wiring.openapi_client(cfg, purpose="fd-sync explain")

    with _ledger(cfg, "preview") as ledger:
        lines = explain_incident(
            cfg,
            ledger,
            wiring.lookups(cfg),
            wiring.destinations(cfg),
            number,
            openapi=openapi if cfg.flashduty.app_key else None,
        )
    _echo(lines)
    return 0


def _echo(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(redact(line))


def _stop_on_signals() -> threading.Event:
    """SIGTERM and SIGINT ask the run to stop at the next safe point instead of dying."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second signal: stop now (the ledger is still safe)
        logs.get("cli").info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


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

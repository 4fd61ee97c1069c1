"""The commands about one incident or channel: dispatch, rules, explain (the dialog's)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

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
)


def _number(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value):
        raise click.BadParameter("expected an incident number such as INC0010001")
    return value.upper()  # numbers are upper case in ServiceNow: inc0010001 means INC0010001


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
    from fd_sync.sync.dispatch import DispatchOptions

    if rule_id and rule_name:
        raise click.UsageError("--rule and --rule-name exclude each other")
    chosen = DispatchOptions(
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
    cfg = load_config(options)
    with ledger_access(cfg, "preview" if dry_run else "write") as ledger:
        dispatcher = wiring.dispatcher(cfg, ledger)
        plan = dispatcher.plan(number, chosen)
        described = describe_plan(plan, dispatcher.destinations[plan.route.destination].push_format)
        if dry_run:
            echo(described)
            for kind, where, body in dispatcher.bodies(plan):
                echo([f"would send {kind} to {where}:", *dumps(body).splitlines()])
            return 0
        sent = dispatcher.send(plan, run_id=logs.identity().get("run_id") or uuid.uuid4().hex[:12])
    echo(described + describe_sent(sent))
    error = failure(sent)
    if error is not None:
        print_error(error)
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

    cfg = load_config(options, secrets_required=False)
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
        echo(escalation.render(found, channel_id=channel_id, name=name).splitlines())
    return 0


@cli.command()
@click.argument("number", callback=_number)
@click.option(
    "--online",
    is_flag=True,
    help="Also read the live Flashduty incident (needs [flashduty] app_key).",
)
@json_option("Print the story and what comes next as one JSON object.")
@click.pass_obj
def explain(options: Options, number: str, online: bool, as_json: bool) -> int:
    """Tell an incident's whole story, oldest first, from the ledger: every event sent or
    refused (time, HTTP status, request id), what was read back from Flashduty, every work
    note written or refused; where it stands now; then the route it matches and why, the
    exact payload its next change would send, and the escalation path. Changes nothing."""
    from fd_sync import wiring
    from fd_sync.ops.explain import explain as explain_incident

    cfg = load_config(options)

    def openapi() -> Any:
        return wiring.openapi_client(cfg, purpose="fd-sync explain")

    def live(incident_id: str) -> Any:
        reader = wiring.incident_reader(cfg, purpose="fd-sync explain --online")
        return reader.incidents([incident_id]).get(incident_id)

    with ledger_access(cfg, "preview") as ledger:
        found = explain_incident(
            cfg,
            ledger,
            wiring.lookups(cfg),
            wiring.destinations(cfg),
            number,
            openapi=openapi if cfg.flashduty.app_key else None,
            online=live if online else None,
        )
    if as_json:
        click.echo(json.dumps(found.data, indent=2))
    else:
        echo(found.lines)
    return 0


@cli.command()
@dry_run_option("List what would be adopted; change nothing.")
@click.option(
    "--days",
    default=31,
    show_default=True,
    type=click.IntRange(1, 366),
    help="Look at alerts that started this many days back (31-day windows).",
)
@click.option(
    "--integration-id",
    "integration_ids",
    multiple=True,
    type=int,
    help="Only alerts of this Flashduty integration (repeatable); default: every open alert.",
)
@click.option(
    "--resolve-closed",
    is_flag=True,
    help="Queue the resolve of alerts whose incident is already closed in ServiceNow.",
)
@click.option(
    "--notes-since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Also write back the Flashduty timeline from this UTC date on (default: only what "
    "happens after the adoption, so that nothing the old integration wrote is written again).",
)
@click.pass_obj
def adopt(
    options: Options,
    dry_run: bool,
    days: int,
    integration_ids: tuple[int, ...],
    resolve_closed: bool,
    notes_since: datetime | None,
) -> int:
    """Take over alerts opened before fd-sync (e.g. by fd-servicenow).

    Lists Flashduty's open alerts, matches them to ServiceNow incidents by sys_id (or
    number), and records them in the ledger as open alerts, so that the incident's next
    change in ServiceNow updates or resolves them. Needs [flashduty] app_key.
    """
    from fd_sync import wiring
    from fd_sync.sync.adopt import adopt as run_adopt

    cfg = load_config(options)
    reader = wiring.incident_reader(cfg, purpose="fd-sync adopt")
    with ledger_access(cfg, "preview" if dry_run else "write") as ledger:
        report = run_adopt(
            cfg,
            ledger,
            reader,
            wiring.servicenow_client(cfg),
            days=days,
            integration_ids=integration_ids,
            resolve_closed=resolve_closed,
            notes_since=int(notes_since.replace(tzinfo=UTC).timestamp()) if notes_since else None,
            dry_run=dry_run,
        )
    from fd_sync.core.decide import DEFAULT_DESTINATION

    verb = "would adopt" if dry_run else "adopted"
    for incident, destination in report.adopted:
        where = "" if destination == DEFAULT_DESTINATION else f" -> {destination}"
        click.echo(f"{verb} {incident.number}{where}")
    for incident in report.resolving:
        click.echo(
            f"{'would resolve' if dry_run else 'resolving'} {incident.number}: closed in ServiceNow"
        )
    for incident in report.closed:
        click.echo(
            f"closed in ServiceNow: {incident.number} (fd-sync adopt --resolve-closed "
            "resolves its alert now)"
        )
    for alert in report.unmatched:
        click.echo(f"not matched: alert_key {alert.alert_key} (no such ServiceNow incident)")
    click.echo(
        f"{verb} {len(report.adopted)} alert(s); {len(report.already)} tracked already, "
        f"{len(report.closed) + len(report.resolving)} closed in ServiceNow, "
        f"{len(report.unmatched)} not matched" + (" (dry run: nothing recorded)" if dry_run else "")
    )
    if report.adopted or report.resolving:
        since = f"from {notes_since:%Y-%m-%d %H:%M:%S} UTC" if notes_since else "after the adoption"
        click.echo(
            f"their Flashduty timeline is written back to ServiceNow {since} only"
            + ("" if notes_since else " (--notes-since DATE writes back older entries too)")
        )
    return 0

"""Paging from the incident form: work notes that start with ``/flashduty``, outbound only.

Every cycle, after delivery: one ``sys_journal_field`` query for new work notes holding
``/flashduty`` since the commands' watermark (ServiceNow's clock, with the scan's look-back
and keyset paging; the first run starts at ServiceNow's present), recorded with the
watermark in one Ledger step; then each command is acted on once and answered with a work
note through the write-back queue (which writes it once, with its marker).

Crash contract (:mod:`fd_sync.store.commands`): only a page is marked attempted before it
is sent; a crash after that never pages again from the same note (it is answered that it
was interrupted), and an event already queued is delivered by the outbox's own contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fd_sync import logs
from fd_sync.core.commands import HELP, CommandError, ParsedCommand, is_command, parse
from fd_sync.core.tickets import OwedWrite
from fd_sync.core.watermark import advance, format_sn_time, scan_start
from fd_sync.errors import FdSyncError, TemporaryFailure
from fd_sync.flashduty import escalation
from fd_sync.servicenow.client import ServiceNowClient
from fd_sync.servicenow.lookups import Lookups
from fd_sync.store.commands import Command, CommandNote
from fd_sync.store.history import read_history
from fd_sync.store.ledger import Ledger
from fd_sync.store.queue import QueueStatus
from fd_sync.store.state import COMMANDS_WATERMARK
from fd_sync.sync.desk_notes import ALL_WORK_NOTES, desk_note_writes
from fd_sync.sync.dispatch import Dispatch, Dispatcher, DispatchOptions, OpenAPIFactory

JOURNAL = "sys_journal_field"
JOURNAL_FIELDS = ("sys_id", "element_id", "value", "sys_created_on", "sys_created_by")
COMMAND_NOTES = "name={table}^element=work_notes^valueLIKE/flashduty"  # one query a cycle


@dataclass
class CommandsReport:
    read: int = 0  # command notes found this cycle
    answered: int = 0
    planned: list[str] = field(default_factory=list)  # --dry-run's lines
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)  # (verb, outcome)
    error: FdSyncError | None = None

    def tally(self, verb: str, outcome: str) -> None:
        self.outcomes[(verb, outcome)] = self.outcomes.get((verb, outcome), 0) + 1


class Commands:
    def __init__(
        self,
        ledger: Ledger,
        servicenow: ServiceNowClient,
        dispatcher: Dispatcher,
        *,
        default_channel: int | None,
        allowed_groups: tuple[str, ...],
        lookback_seconds: int,
        openapi: OpenAPIFactory | None,
        act: bool = True,
        forward_notes: bool = False,
    ) -> None:
        self.ledger = ledger
        self.servicenow = servicenow
        self.dispatcher = dispatcher
        self.default_channel = default_channel
        self.allowed = {g.casefold(): g for g in allowed_groups}
        self.lookback = lookback_seconds
        self.openapi = openapi
        self.own_user = servicenow.config.username or ""
        self.act = act  # [commands] enabled: act on /flashduty notes
        self.forward_notes = forward_notes  # [forward] work_notes: the desk's notes go too
        self.log = logs.get("commands")

    def run(self, report: CommandsReport, *, run_id: str, dry_run: bool = False) -> None:
        try:
            notes = self._read(report, run_id=run_id, dry_run=dry_run)
            if dry_run:
                for note in notes:
                    first = note.text.strip().splitlines()[0]
                    answer = self._preview(note).splitlines()[0]
                    report.planned.append(
                        f"{note.number} command from {note.author}: {first} -> {answer}"
                    )
                return
            for command in self.ledger.commands.pending(limit=100) if self.act else ():
                self._act(command, report, run_id)
        except TemporaryFailure as exc:
            report.error = exc  # the commands wait; the rest of the cycle goes on
            self.log.error("commands_failed", error=str(exc), exit_code=exc.exit_code)

    # --- reading the journal ----------------------------------------------------------------

    def _read(self, report: CommandsReport, *, run_id: str, dry_run: bool) -> list[CommandNote]:
        watermark = self.ledger.state.get(COMMANDS_WATERMARK)
        if watermark is None:
            now = self.servicenow.last_server_now
            if now is not None and not dry_run:  # the first run starts at ServiceNow's present
                self.ledger.record_commands([], watermark=format_sn_time(now), run_id=run_id)
            return []
        found: list[CommandNote] = []
        pages = self.servicenow.scan(
            scan_start(watermark, self.lookback),
            table=JOURNAL,
            time_field="sys_created_on",
            fields=JOURNAL_FIELDS,
            extra=(ALL_WORK_NOTES if self.forward_notes else COMMAND_NOTES).format(
                table=self.servicenow.config.table
            ),
        )
        for page in pages:
            rows = [
                r
                for r in page.records
                if isinstance(r, dict)
                and self.act
                and is_command(str(r.get("value") or ""))
                and str(r.get("sys_created_by") or "") != self.own_user  # never our own
            ]
            owed: list[OwedWrite] = []
            if self.forward_notes:
                records = [r for r in page.records if isinstance(r, dict)]
                owed = desk_note_writes(
                    records, self.ledger, Lookups(self.servicenow), self.own_user
                )
            numbers = Lookups(self.servicenow).numbers(
                list(dict.fromkeys(str(r.get("element_id") or "") for r in rows))
            )
            notes = [_note(r, numbers) for r in rows if str(r.get("element_id")) in numbers]
            watermark = advance(watermark, page.cursor[0], page.server_now)
            if not dry_run:
                self.ledger.record_commands(notes, watermark=watermark, run_id=run_id, owed=owed)
            else:
                report.planned += [
                    f"{o.number} work note -> Flashduty comment ({len(o.write.text)} characters)"
                    for o in owed
                ]
            found += notes
        report.read += len(found)
        return found

    # --- acting -----------------------------------------------------------------------------

    def _act(self, command: Command, report: CommandsReport, run_id: str) -> None:
        verb, outcome = command.verb or "invalid", "ok"
        if command.attempts:
            answer = (
                "[Flashduty] fd-sync was stopped while it acted on this command and did not "
                f"repeat it; see fd-sync explain {command.number} for what reached Flashduty"
            )
            outcome = "interrupted"
        else:
            try:
                answer, outcome = self._answer(command, run_id)
            except TemporaryFailure:
                raise  # nothing was done: the command is acted on next cycle
            except FdSyncError as exc:
                doing = {"rules": "show the rules", "status": "show the status"}.get(verb, verb)
                answer, outcome = f"[Flashduty] Could not {doing}: {_for_notes(str(exc))}", "failed"
        self.ledger.answer_command(command, answer, run_id=run_id)
        report.answered += 1
        report.tally(verb, outcome)
        self.log.info(
            "command",
            number=command.number,
            author=command.author,
            verb=verb,
            outcome=outcome,
            command_id=command.label,
        )

    def _preview(self, note: CommandNote) -> str:
        """What acting on a note would answer, sending and recording nothing (--dry-run)."""
        command = Command(
            0,
            note.journal_id,
            note.sys_id,
            note.number,
            note.author,
            note.text,
            note.verb,
            QueueStatus.PENDING,
            0,
            "",
        )
        try:
            if note.verb != "page":
                return self._answer(command, run_id="dry-run")[0]
            dispatch = self.dispatcher.plan(note.number, _options(parse(note.text)))
        except FdSyncError as exc:
            return f"[Flashduty] Could not {note.verb or 'act'}: {_for_notes(str(exc))}"
        via = ", ".join(dispatch.extras.personal_channels) or "the rule's channels"
        return f"would page via {via}: {self._path(dispatch)}"

    def _answer(self, command: Command, run_id: str) -> tuple[str, str]:
        try:
            parsed = parse(command.text)
        except CommandError as exc:
            return f"[Flashduty] {exc}\n{HELP}", "invalid"
        name = command.author
        if self.allowed or parsed.verb == "page":
            name, groups = Lookups(self.servicenow).author(command.author)
            if self.allowed and not {g.casefold() for g in groups} & self.allowed.keys():
                listed = " or ".join(self.allowed.values())
                return f"[Flashduty] {name} may not page from ServiceNow: not in {listed}", (
                    "refused"
                )
        if parsed.verb == "help":
            return HELP, "ok"
        if parsed.verb == "status":
            return self._status(command), "ok"
        if parsed.verb == "rules":
            return self._rules(command, parsed), "ok"
        return self._page(command, parsed, name, run_id)

    def _page(
        self, command: Command, parsed: ParsedCommand, name: str, run_id: str
    ) -> tuple[str, str]:
        dispatch = self.dispatcher.plan(command.number, _options(parsed))
        self.ledger.attempt_command(command)  # from here on, never paged twice by this note
        sent = self.dispatcher.send(dispatch, run_id=run_id)
        dead = [e for e in sent.events if e.status is QueueStatus.DEAD]
        if dead:
            # As the outbox keeps it: HTTP status, Flashduty's code and message, request id.
            return f"[Flashduty] Could not page: {dead[0].error_message}", "refused"
        if any(e.status is not QueueStatus.DELIVERED for e in sent.events):
            why = "; ".join(sent.delivery.down.values()) or "held behind an earlier event"
            return f"[Flashduty] Page queued, not sent yet ({why}); fd-sync keeps trying", (
                "queued"
            )
        via = ", ".join(dispatch.extras.personal_channels) or "the rule's channels"
        try:
            path = self._path(dispatch)
        except FdSyncError as exc:  # paged already: the answer says so whatever the OpenAPI
            path = f"escalation path not shown ({exc})."
        return f"[Flashduty] Paged by {name} via {via}: {path}", "paged"

    def _path(self, dispatch: Dispatch) -> str:
        """The escalation path, as `fd-sync rules` shows it, on one line."""
        link = self.ledger.links.get([dispatch.incident.sys_id]).get(dispatch.incident.sys_id)
        tail = f" Flashduty incident: {link.incident_id}" if link and link.incident_id else ""
        channel = dispatch.route.channel_id or self.default_channel
        if self.openapi is None or channel is None:
            return (
                "escalation as the channel's rules say (set [flashduty] channel_id on the "
                "fd-sync host to show them here)." + tail
            )
        rules = escalation.load_rules(self.openapi(), channel)
        chosen = [r for r in rules if r.rule_id == dispatch.extras.rule_id]
        if not chosen:
            return f"Flashduty chooses among channel {channel}'s enabled rules." + tail
        rule = chosen[0]
        steps, previous = [], None
        for layer in rule.layers:
            start = "" if previous is None else escalation.starts(layer, previous) + " "
            steps.append(f"{start}layer {layer.number} {escalation.notifies(layer)}")
            previous = layer
        return f'rule "{rule.name}" — ' + "; ".join(steps) + "." + tail

    def _rules(self, command: Command, parsed: ParsedCommand) -> str:
        if self.openapi is None:
            return "[Flashduty] rules need [flashduty] app_key on the fd-sync host"
        options = DispatchOptions(group=parsed.options.get("group"), force=True)
        dispatch = self.dispatcher.plan(command.number, options)
        channel = dispatch.route.channel_id or self.default_channel
        if channel is None:
            return "[Flashduty] no channel to show: set [flashduty] channel_id on the fd-sync host"
        client = self.openapi()
        found = escalation.load_rules(client, channel)
        name = escalation.channel_name(client, channel)
        text = escalation.render(found, channel_id=channel, name=name)
        return f"[Flashduty] Escalation rules of route {dispatch.route.name!r}:\n{text}"

    def _status(self, command: Command) -> str:
        history = read_history(self.ledger, command.number)
        if history is None:
            return f"[Flashduty] {command.number}: fd-sync has sent nothing for it yet"
        dead = history.dead_create
        if dead is not None:
            state = f"its alert never reached Flashduty (event {dead.label} refused)"
        elif history.held:
            state = "closed in Flashduty by a responder, open here: not paged again"
        elif history.alert_open:
            state = f"alert open in Flashduty at {history.destination or 'default'}"
        else:
            state = "no alert open in Flashduty"
        pending = sum(e.status is QueueStatus.PENDING for e in history.events)
        refused = sum(e.status is QueueStatus.DEAD for e in history.events)
        link = history.link
        parts = [f"[Flashduty] {command.number}: {state}"]
        if link is not None and link.incident_id:
            parts.append(self._live(link.incident_id, link.progress))
        parts.append(f"{pending} event(s) pending, {refused} refused")
        return "; ".join(parts)

    def _live(self, incident_id: str, progress: str | None) -> str:
        """The Flashduty incident now (/incident/info): progress, who acknowledged, the
        responders, the link; what the ledger last read when the OpenAPI cannot say."""
        known = f"Flashduty incident {incident_id} ({progress or 'unknown'})"
        if self.openapi is None:
            return known
        try:
            data = self.openapi().call("/incident/info", {"incident_id": incident_id})
        except FdSyncError as exc:
            return f"{known}; not read now: {exc}"
        info = data if isinstance(data, dict) else {}
        responders = [r for r in info.get("responders") or () if isinstance(r, dict)]
        names = [
            str(r.get("person_name") or r.get("email") or r.get("person_id")) for r in responders
        ]
        acked = [n for n, r in zip(names, responders, strict=True) if r.get("acknowledged_at")]
        text = f"Flashduty incident {info.get('progress') or progress or 'unknown'}"
        text += f", acknowledged by {', '.join(acked)}" if acked else ", not acknowledged"
        if names:
            text += f", responders {', '.join(names)}"
        return text + f": {info.get('detail_url') or incident_id}"


def _options(parsed: ParsedCommand) -> DispatchOptions:
    """A page's words as `fd-sync dispatch`'s flags."""
    return DispatchOptions(
        group=parsed.options.get("group"),
        members=parsed.members,
        channels=tuple(c.lower() for c in parsed.channels) if parsed.channels else None,
        rule_name=parsed.options.get("rule"),
        severity=(parsed.options.get("severity") or "").capitalize() or None,
        force=parsed.force,
    )


def _note(row: dict[str, object], numbers: dict[str, str]) -> CommandNote:
    text = str(row.get("value") or "")
    try:
        verb = parse(text).verb
    except CommandError:
        verb = ""
    sys_id = str(row.get("element_id") or "")
    return CommandNote(
        str(row.get("sys_id") or ""),
        sys_id,
        numbers[sys_id],
        str(row.get("sys_created_by") or ""),
        text,
        verb,
    )


def _for_notes(message: str) -> str:
    """A command-line fix, said as a command's: --force is force=true here."""
    return message.replace("add --force if you mean it", "add force=true if you mean it")

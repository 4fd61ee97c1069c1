"""``fd-sync demo``: real cycles against simulated ServiceNow and Flashduty on loopback.

Nothing is mocked but the two remote services: the same Cycle, ledger, outbox
and HTTP clients as ``fd-sync once`` run against the simulators, with a
temporary ledger that is removed afterwards.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from fd_sync import logs, wiring
from fd_sync.config import Config, parse
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim
from fd_sync.store.ledger import Ledger
from fd_sync.sync.cycle import Cycle
from fd_sync.sync.report import CycleReport

Echo = Callable[[str], None]

PROMETHEUS = 5550001  # the Flashduty channel whose monitoring incidents open tickets
SEED = [
    ("Email delivery delayed for the Paris office", "1", "1", "Messaging", "Ann Lee"),
    ("VPN gateway dropping sessions", "2", "1", "Network", "Bob Diaz"),
    ("Payroll batch job failed", "2", "2", "Database", ""),
    ("Printer offline on floor 3", "3", "3", "Service Desk", ""),
]


def _config(servicenow: ServiceNowSim, flashduty: FlashdutySim, database: Path) -> Config:
    raw = {
        "servicenow": {
            "instance_url": servicenow.url,
            "username": servicenow.username,
            "password": servicenow.password,
            "timeout_seconds": 5,
            "max_attempts": 3,
        },
        "flashduty": {
            "push_url": flashduty.push_url_servicenow,
            "max_attempts": 3,
            "app_key": flashduty.app_key,
            "api_domain": flashduty.api_domain,
        },
        "sync": {"database": str(database), "lookback_seconds": 60},
        # Two-way: responders' acks, comments and resolves come back as work notes.
        "writeback": {
            "enabled": True,
            "acknowledge_state": "2",
            "resolve_state": "6",
            "close_code": "Solution provided",
        },
        # Monitoring incidents born in Flashduty open ServiceNow tickets.
        "tickets": {
            "enabled": True,
            "channel_ids": [PROMETHEUS],
            "fields": {"short_description": "{title}", "assignment_group": "Database"},
        },
    }
    return parse(raw, path=database.parent / "demo.toml", env={})


class _Demo:
    def __init__(self, echo: Echo, workdir: Path) -> None:
        self.echo = echo
        self.sn = ServiceNowSim()
        self.fd = FlashdutySim()
        self.workdir = workdir
        self.seen = 0
        self.written = 0
        self.posted = 0
        self.openapi = 0
        self.groups: dict[str, str] = {}
        self.users: dict[str, str] = {}

    def seed(self) -> list[str]:
        for _, _, _, group, user in SEED:
            self.groups.setdefault(group, self.sn.add_group(group))
            if user:
                self.users.setdefault(user, self.sn.add_user(user))
        ids = []
        for title, urgency, impact, group, user in SEED:
            row = self.sn.create(
                short_description=title,
                urgency=urgency,
                impact=impact,
                assignment_group=self.groups[group],
                assigned_to=self.users.get(user, ""),
                updated_on=self.sn.clock.text(-600),
            )
            ids.append(row["sys_id"])
        return ids

    def show_received(self) -> None:
        events = self.fd.events()[self.seen :]
        self.seen += len(events)
        if not events:
            self.echo("  Flashduty received nothing (nothing changed that Flashduty shows)")
            return
        self.echo("  Flashduty received:")
        for event in events:
            body = event.body
            title = body.get("short_description") or ""
            detail = f"{body.get('urgency', ''):<6} {title}" if title else body.get("state", "")
            self.echo(
                f"    {body['number']}  {body['action_type']:<11} -> {event.kind:<7} {detail}"
            )

    def show_written(self) -> None:
        """What the write-back wrote to ServiceNow: work notes and state changes."""
        writes = self.sn.writes[self.written :]
        self.written += len(writes)
        if not writes:
            return
        self.echo("  ServiceNow received (write-back, PATCH):")
        for sys_id, body in writes:
            row = self.sn.incident(sys_id)
            state = f"  state -> {body['state']}" if "state" in body else ""
            self.echo(f"    {row['number']}  work note:{state}")
            for line in str(body.get("work_notes") or "").splitlines():
                self.echo(f"      {line}")

    def show_tickets(self) -> None:
        """Tickets POSTed to ServiceNow, and what fd-sync wrote to Flashduty's incidents."""
        created = self.sn.created[self.posted :]
        self.posted += len(created)
        for sys_id in created:
            row = self.sn.incident(sys_id)
            self.echo(
                f"  ServiceNow received (ticket, POST): {row['number']}  urgency "
                f"{row['urgency']}  {row['short_description']}  (Flashduty "
                f"{row['correlation_id']})"
            )
        writes = self.fd.openapi_writes[self.openapi :]
        self.openapi += len(writes)
        for path, body in writes:
            said = body.get("comment") or body.get("resolution") or ""
            self.echo(f"  Flashduty received (OpenAPI): {path}  {said}")

    def cycle(
        self, cycle: Cycle, number: int, story: str, *, since: datetime | None = None
    ) -> CycleReport:
        self.echo(f"\ncycle {number}: {story}")
        report = cycle.run(since=since)
        self.show_received()
        self.show_tickets()
        self.show_written()
        self.echo(f"  fd-sync: {report.summary()}")
        return report


def run_demo(*, cycles: int = 5, echo: Echo = print) -> int:
    logs.configure("error")  # the demo narrates; log lines would only interleave
    with tempfile.TemporaryDirectory(prefix="fd-sync-demo-") as tmp:
        demo = _Demo(echo, Path(tmp))
        with demo.sn, demo.fd:
            return _run(demo, cycles)


def _run(demo: _Demo, cycles: int) -> int:
    sn, fd, echo = demo.sn, demo.fd, demo.echo
    config = _config(sn, fd, demo.workdir / "fd-sync.db")
    echo("fd-sync demo: ServiceNow and Flashduty simulated on loopback; nothing leaves this host.")
    echo(f"  ServiceNow Table API  {sn.url}/api/now/table/incident")
    echo(f"  Flashduty receiver    {fd.url}/event/push/servicenow/<token>")
    echo(f"  ledger                {config.sync.database}")
    ids = demo.seed()
    echo(f"  seeded {len(ids)} open incidents, last changed 10 minutes ago")
    fd.add_channel("Prometheus", channel_id=PROMETHEUS)

    with Ledger(config.sync.database) as ledger:
        cycle = wiring.cycle(config, ledger)
        since = sn.clock.now() - timedelta(hours=1)
        demo.cycle(
            cycle, 1, "fd-sync once --since <an hour ago>: backfill the open incidents", since=since
        )

        if cycles >= 2:
            sn.update(
                ids[1],
                assigned_to=demo.users["Ann Lee"],
                urgency="1",
                short_description="VPN gateway dropping sessions in two regions",
            )
            sn.resolve(ids[3])
            new = sn.create(
                short_description="Checkout API returning 502",
                urgency="1",
                impact="1",
                assignment_group=demo.groups["Network"],
            )
            ids.append(new["sys_id"])
            disk = fd.open_incident(
                "Disk 93% full on db-3", channel_id=PROMETHEUS, severity="Critical"
            )
            demo.cycle(
                cycle,
                2,
                f"in ServiceNow, {sn.incident(ids[1])['number']} escalates, "
                f"{sn.incident(ids[3])['number']} is resolved, {new['number']} opens; in "
                "Flashduty, Prometheus opens 'Disk 93% full on db-3' in a watched channel",
            )

        if cycles >= 3:
            sn.resolve(ids[0], state="7")
            sn.update(ids[2], work_notes="checked the batch logs")
            fd.inject(status=503, path="/event/push/", times=2)
            demo.cycle(
                cycle,
                3,
                f"{sn.incident(ids[0])['number']} is closed, a work note is "
                "added elsewhere, and Flashduty answers 503 twice (retried with backoff)",
            )

        if cycles >= 4:
            ann = fd.add_person("Ann Lee", "ann@example.com")
            vpn = fd.incident_of(ids[1])
            fd.ack(vpn, ann)
            fd.comment(vpn, ann, "rolling back the gateway firmware")
            fd.ack(disk, ann)
            bob = fd.add_person("Bob Diaz", "bob@example.com")
            fd.resolve(fd.incident_of(ids[4]), bob, "upstream pool restarted")
            paged = ids[2]  # an agent pages from this incident's form
            checkout = sn.incident(paged)["number"]
            sn.work_note(paged, "/flashduty page channels=sms,voice", by="ann lee")
            demo.cycle(
                cycle,
                4,
                f"in Flashduty, Ann Lee acknowledges {sn.incident(ids[1])['number']} and "
                "the disk incident, and comments; Bob Diaz resolves "
                f"{sn.incident(ids[4])['number']}; in "
                f"ServiceNow an agent pages from {checkout}'s form: a work note "
                "'/flashduty page channels=sms,voice'",
            )
            for note in sn.journal(paged, "work_notes"):
                for line in note["value"].splitlines():
                    if line.startswith("[Flashduty] Paged"):
                        echo(f"  {checkout}'s answer, as the agent reads it: {line}")

        if cycles >= 5:
            (ticket,) = sn.created
            sn.update(
                ticket,
                state="6",
                close_code="Solution provided",
                close_notes="rotated the logs, 40 GB free",
            )
            demo.cycle(
                cycle,
                5,
                f"in ServiceNow, the desk resolves the ticket {sn.incident(ticket)['number']}: "
                "the Flashduty incident closes",
            )
            progress = fd.fd_incidents[disk]["progress"]
            echo(f"  the Flashduty incident 'Disk 93% full on db-3' is now {progress}")

        for number in range(6, cycles + 1):
            demo.cycle(
                cycle,
                number,
                "nothing changed by a person: fd-sync's own writes come back as nothing",
            )

    open_sn = {sn.incident(i)["number"] for i in sn.open_sys_ids()}
    open_fd = {sn.incident(key)["number"] for key in fd.open_keys()}
    echo(f"\nopen in ServiceNow: {', '.join(sorted(open_sn)) or 'none'}")
    echo(f"open in Flashduty:  {', '.join(sorted(open_fd)) or 'none'}")
    if open_sn == open_fd:
        echo(
            "the two agree. Next, by hand with simulators you drive: README, "
            '"Try it without a ServiceNow"; or with your instance: cp config.example.toml '
            f"config.toml, fill it in, and run: {command_path()} --config config.toml check"
        )
        return 0
    echo("MISMATCH: Flashduty does not mirror ServiceNow; please report this")
    return 1


def command_path() -> str:
    """How this fd-sync was started, so the printed command works as printed (after
    ``make demo`` fd-sync is .venv/bin/fd-sync, not on PATH)."""
    invoked = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if invoked is not None and invoked.name == "fd-sync" and invoked.exists():
        return str(invoked) if invoked.is_absolute() or "/" in sys.argv[0] else "fd-sync"
    return "fd-sync"

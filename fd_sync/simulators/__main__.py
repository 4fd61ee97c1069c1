"""Run a simulator as its own process: ``python -m fd_sync.simulators servicenow|flashduty``.

For people (README, "Try it without a ServiceNow"): it prints one JSON line (its URL and
the credentials a client needs), then serves until SIGTERM or Ctrl-C. ``python -m
fd_sync.simulators ctl URL COMMAND [key=value ...]`` changes it while it runs: create,
update or resolve incidents, inject a fault, list what Flashduty received.

For the benchmarks (``--stdin``): the same commands arrive as JSON lines on standard input,
each answered by one JSON line on standard output, and closing stdin stops it (so a dead
driver never leaves a simulator behind). The benchmarks measure a client's CPU time and
memory as those of its process, which is why the simulators live in another one.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.http import CONTROL_PREFIX, SimServer
from fd_sync.simulators.servicenow import ServiceNowSim

TABLE = "/api/now/table/"
Command = Callable[[dict[str, Any]], dict[str, Any]]


class ServiceNowControl:
    """Commands for a seeded ServiceNow: change incidents now, count requests."""

    def __init__(self, sim: ServiceNowSim) -> None:
        self.sim = sim
        self.round = 0

    def commands(self) -> dict[str, Command]:
        return {
            "stats": self.stats,
            "reset": self.reset,
            "change": self.change,
            "list": self.list,
            "create": self.create,
            "update": self.update,
            "resolve": self.resolve,
            "note": self.note,
            "journal": self.journal,
            "add-user": self.add_user,
            "rate-limit": self.rate_limit,
            "fault": lambda args: fault(self.sim, args),
            "clear-faults": lambda _: clear_faults(self.sim),
        }

    def note(self, args: dict[str, Any]) -> dict[str, Any]:
        """A work note as a user writes it on the form: NUMBER text=... [by=USER_NAME]
        (a /flashduty command, or a note for [forward] work_notes)."""
        sys_id = self._by_number(args)
        self.sim.work_note(sys_id, str(args.get("text") or ""), by=str(args.get("by") or "ann"))
        return {"number": args.get("number"), "sys_id": sys_id}

    def add_user(self, args: dict[str, Any]) -> dict[str, Any]:
        """A sys_user: name=... [email=...] [user_name=...] [active=false]."""
        name = str(args.get("name") or "Ann Lee")
        sys_id = self.sim.add_user(
            name,
            user_name=str(args.get("user_name") or name.split(maxsplit=1)[0].lower()),
            email=str(args.get("email") or ""),
            active=str(args.get("active", "true")).lower() != "false",
        )
        return {"sys_id": sys_id}

    def rate_limit(self, args: dict[str, Any]) -> dict[str, Any]:
        """A rate-limit rule for the user: per_hour=N (0: none); X-RateLimit-* headers on
        every answer, 429 with Retry-After past it."""
        self.sim.rate_limit_per_hour = int(args.get("per_hour") or 0)
        return {"per_hour": self.sim.rate_limit_per_hour, "rate_limited": self.sim.rate_limited}

    def journal(self, args: dict[str, Any]) -> dict[str, Any]:
        """An incident's work notes, oldest first: NUMBER."""
        sys_id = self._by_number(args)
        return {
            "work_notes": [
                {"by": j["sys_created_by"], "at": j["sys_created_on"], "text": j["value"]}
                for j in self.sim.journal(sys_id, "work_notes")
            ]
        }

    def _by_number(self, args: dict[str, Any]) -> str:
        number = str(args.get("number", ""))
        for row in self.sim.incidents():
            if row["number"] == number:
                return row["sys_id"]
        raise KeyError(f"no incident {number!r}")

    def list(self, _: dict[str, Any]) -> dict[str, Any]:
        rows = sorted(self.sim.incidents(), key=lambda r: r["number"])
        keys = (
            "number",
            "sys_id",
            "state",
            "urgency",
            "assigned_to",
            "short_description",
            "sys_updated_on",
        )
        return {"incidents": [{k: r.get(k, "") for k in keys} for r in rows]}

    def create(self, args: dict[str, Any]) -> dict[str, Any]:
        fields = {k: str(v) for k, v in args.items() if k != "cmd"}
        fields.setdefault("short_description", "Created with fd_sync.simulators ctl")
        fields.setdefault("urgency", "2")
        row = self.sim.create(**fields)
        return {"number": row["number"], "sys_id": row["sys_id"]}

    def update(self, args: dict[str, Any]) -> dict[str, Any]:
        fields = {k: str(v) for k, v in args.items() if k not in ("cmd", "number")}
        row = self.sim.update(self._by_number(args), **fields)
        return {"number": row["number"], "state": row["state"], "mod_count": row["sys_mod_count"]}

    def resolve(self, args: dict[str, Any]) -> dict[str, Any]:
        row = self.sim.resolve(self._by_number(args), str(args.get("state", "6")))
        return {"number": row["number"], "state": row["state"]}

    def stats(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "table_requests": len(self.sim.requests_to(TABLE)),
            "requests": len(self.sim.requests),
            "incidents": len(self.sim.tables["incident"]),
            "open": len(self.sim.open_sys_ids()),
        }

    def reset(self, _: dict[str, Any]) -> dict[str, Any]:
        with self.sim._lock:
            self.sim.requests.clear()
        return {}

    def change(self, args: dict[str, Any]) -> dict[str, Any]:
        """Update, resolve and reopen incidents now, as agents would in the UI.

        Deterministic: open and closed incidents are taken in number order,
        rotating by round, so repeated rounds touch different incidents.
        Answers the sys_ids changed and the monotonic time of the change.
        """
        self.round += 1
        by_number = sorted(self.sim.incidents(), key=lambda r: r["number"])
        open_rows = [r for r in by_number if r["state"] not in ("6", "7", "8")]
        closed_rows = [r for r in by_number if r["state"] in ("6", "7", "8")]
        updates, resolves, reopens = (int(args.get(k, 0)) for k in ("update", "resolve", "reopen"))
        chosen_open = _rotate(open_rows, self.round * (updates + resolves), updates + resolves)
        chosen_closed = _rotate(closed_rows, self.round * reopens, reopens)
        changed = []
        for row in chosen_open[:updates]:
            title = f"{row['short_description'].split(' [')[0]} [round {self.round}]"
            changed.append(self.sim.update(row["sys_id"], short_description=title)["sys_id"])
        for row in chosen_open[updates:]:
            changed.append(self.sim.update(row["sys_id"], state="6")["sys_id"])
        for row in chosen_closed:
            changed.append(self.sim.update(row["sys_id"], state="2")["sys_id"])
        return {"sys_ids": changed, "at": time.monotonic()}


def _rotate(rows: list[dict[str, str]], start: int, count: int) -> list[dict[str, str]]:
    if not rows or count <= 0:
        return []
    start %= len(rows)
    return (rows[start:] + rows[:start])[: min(count, len(rows))]


class FlashdutyControl:
    """Commands for the receiver: what arrived, when, and in which order per incident."""

    def __init__(self, sim: FlashdutySim) -> None:
        self.sim = sim

    def commands(self) -> dict[str, Command]:
        return {
            "stats": self.stats,
            "reset": self.reset,
            "arrivals": self.arrivals,
            "events": self.events,
            "fault": lambda args: fault(self.sim, args),
            "clear-faults": lambda _: clear_faults(self.sim),
            "ack": lambda args: self.respond("ack", args),
            "comment": lambda args: self.respond("comment", args),
            "resolve": lambda args: self.respond("resolve", args),
            "reopen": lambda args: self.respond("reopen", args),
            "assign": lambda args: self.respond("assign", args),
            "severity": lambda args: self.respond("severity", args),
            "monitoring": self.monitoring,
            "incidents": self.incidents,
        }

    def monitoring(self, args: dict[str, Any]) -> dict[str, Any]:
        """A monitoring tool's alert opens an incident: title=... channel=ID
        [severity=Critical|Warning|Info] [description=...] (a ticket, with [tickets] on)."""
        channel = int(args.get("channel") or 5550001)
        if channel not in self.sim.channels:
            self.sim.add_channel(f"channel {channel}", channel_id=channel)
        incident_id = self.sim.open_incident(
            str(args.get("title") or "Disk full on db-3"),
            channel_id=channel,
            severity=str(args.get("severity") or "Critical"),
            description=str(args.get("description") or ""),
        )
        return {"incident_id": incident_id, "num": self.sim.fd_incidents[incident_id]["num"]}

    def incidents(self, _: dict[str, Any]) -> dict[str, Any]:
        """Every incident: id, num, title, progress, channel, and the OpenAPI writes to it."""
        with self.sim._lock:
            return {
                "incidents": [
                    {
                        "incident_id": i["incident_id"],
                        "num": i["num"],
                        "title": i["title"],
                        "progress": i["progress"],
                        "channel_id": i["channel_id"],
                        "writes": [
                            p
                            for p, _ in self.sim.openapi_writes
                            if i["incident_id"] in (_.get("incident_ids") or [])
                        ],
                    }
                    for i in self.sim.fd_incidents.values()
                ]
            }

    def respond(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """A responder acts on the incident of an alert: key=SYS_ID (or incident=ID, for a
        monitoring incident) [by=NAME] [text=...]."""
        if args.get("incident"):
            incident_id = str(args["incident"])
        else:
            incident_id = self.sim.incident_of(str(args["key"]))
        person = self._person(str(args.get("by") or "Ann Lee"), str(args.get("email") or ""))
        text = str(args.get("text") or "")
        if action == "ack":
            self.sim.ack(incident_id, person)
        elif action == "comment":
            self.sim.comment(incident_id, person, text)
        elif action == "resolve":
            self.sim.resolve(incident_id, person, text)
        elif action == "assign":  # to=NAME: that member (added when new)
            target = self._person(str(args.get("to") or "Bob Ray"), str(args.get("to_email") or ""))
            self.sim.assign(incident_id, person, [target])
        elif action == "severity":  # to=Critical|Warning|Info
            self.sim.change_severity(incident_id, person, str(args.get("to") or "Critical"))
        else:
            self.sim.reopen(incident_id, person, text)
        return {
            "incident_id": incident_id,
            "progress": self.sim.fd_incidents[incident_id]["progress"],
        }

    def _person(self, name: str, email: str) -> int:
        found = next((p for p, i in self.sim.persons.items() if i["person_name"] == name), None)
        return found if found is not None else self.sim.add_person(name, email)

    def events(self, _: dict[str, Any]) -> dict[str, Any]:
        """What Flashduty received, in order, and which alerts are open."""
        return {
            "events": [
                {"key": e.key, "kind": e.kind, "format": e.fmt, "duplicate": e.duplicate}
                for e in self.sim.events()
            ],
            "open": sorted(self.sim.open_keys()),
        }

    def stats(self, _: dict[str, Any]) -> dict[str, Any]:
        events = self.sim.events()
        sequences = collections.Counter(
            ",".join(kinds) for kinds in self.sim.history(include_duplicates=True).values()
        )
        return {
            "received": len(events),
            "requests": len(self.sim.requests),
            "duplicates": sum(1 for e in events if e.duplicate),
            "rate_limited": self.sim.rate_limited,
            "violations": len(self.sim.violations),
            "first_at": events[0].at if events else None,
            "last_at": events[-1].at if events else None,
            "sequences": dict(sequences),
        }

    def reset(self, _: dict[str, Any]) -> dict[str, Any]:
        with self.sim._lock:
            self.sim.received.clear()
            self.sim.requests.clear()
            self.sim.open.clear()
            self.sim._last.clear()
            self.sim._last_kind.clear()
            self.sim.violations.clear()
            self.sim.rate_limited = 0
        return {}

    def arrivals(self, args: dict[str, Any]) -> dict[str, Any]:
        """The first arrival at or after ``after`` of an event for each of ``keys``."""
        wanted = set(args.get("keys", []))
        after = float(args.get("after", 0.0))
        found: dict[str, float] = {}
        for event in self.sim.events():
            if event.key in wanted and event.at >= after and event.key not in found:
                found[event.key] = event.at
        return {"arrivals": found}


def fault(sim: SimServer, args: dict[str, Any]) -> dict[str, Any]:
    """Misbehave for the next ``times`` requests under ``path``: an HTTP ``status`` (an HTML
    page for 5xx), a ``drop``ped connection, or an answer ``delay``ed by seconds."""
    injected = sim.inject(
        status=int(args["status"]) if "status" in args else None,
        drop=str(args.get("drop", "")).lower() in ("1", "true", "yes"),
        delay=float(args.get("delay", 0)),
        path=str(args.get("path", "")),
        times=int(args.get("times", 1)),
    )
    return {"fault": {"status": injected.status, "path": injected.path, "times": injected.times}}


def clear_faults(sim: SimServer) -> dict[str, Any]:
    sim.clear_faults()
    return {"faults": 0}


def serve(commands: dict[str, Command]) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            answer = commands[request["cmd"]](request)
        except Exception as exc:  # a bad command must not kill the simulator
            answer = {"error": repr(exc)}
        print(json.dumps(answer), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fd_sync.simulators", description=__doc__)
    which = parser.add_subparsers(dest="which", required=True)
    sn = which.add_parser("servicenow", help="the Table API, seeded with incidents")
    sn.add_argument(
        "--seed",
        "--incidents",
        dest="incidents",
        type=int,
        default=0,
        metavar="N",
        help="incidents to seed",
    )
    sn.add_argument("--open-ratio", type=float, default=0.02, help="share of them open")
    sn.add_argument("--span-days", type=float, default=90.0, help="their changes spread over")
    sn.add_argument("--username", default="svc.fdsync", help="the integration user")
    sn.add_argument("--password", default="sn-password-0a1b2c", help="its password")
    fd = which.add_parser("flashduty", help="the push receiver and the OpenAPI")
    fd.add_argument("--rate-limit-per-minute", type=int, default=None, help="answer 429 beyond")
    fd.add_argument("--token", default="fdtoken0123456789abcdef", help="the ServiceNow push token")
    fd.add_argument("--integration-key", default="fdkey0123456789abcdef", help="standard push key")
    fd.add_argument("--app-key", default="fdappkey0123456789abcdef", help="the OpenAPI app_key")
    for sub in (sn, fd):
        sub.add_argument("--port", type=int, default=0, help="on 127.0.0.1; 0 picks a free one")
        sub.add_argument(
            "--stdin",
            action="store_true",
            help="take commands on stdin and stop when it closes (the benchmarks)",
        )
    ctl = which.add_parser("ctl", help="send a command to a running simulator")
    ctl.add_argument("url", help="the simulator's URL, as it printed it")
    ctl.add_argument(
        "command", help="list, create, update, resolve, events, fault, clear-faults, ..."
    )
    ctl.add_argument(
        "fields",
        nargs="*",
        metavar="key=value",
        help="the command's arguments; update and resolve take the number first",
    )
    args = parser.parse_args(argv)
    if args.which == "ctl":
        return control(args.url, args.command, args.fields)
    # Handlers first: a stop during seeding or right after the hello line is still clean.
    stop = None if args.stdin else stop_on_signals()

    if args.which == "servicenow":
        from datetime import timedelta

        sim = ServiceNowSim(port=args.port, username=args.username, password=args.password)
        started = time.perf_counter()
        sim.seed(args.incidents, open_ratio=args.open_ratio, span=timedelta(days=args.span_days))
        oldest = sim._index[0][0] if sim._index else sim.clock.text()
        server: SimServer = sim
        commands = ServiceNowControl(sim).commands()
    else:
        receiver = FlashdutySim(
            port=args.port,
            rate_limit_per_minute=args.rate_limit_per_minute,
            token=args.token,
            integration_key=args.integration_key,
            app_key=args.app_key,
        )
        server = receiver
        commands = FlashdutyControl(receiver).commands()
    try:
        server.start()
    except OSError as exc:
        print(
            f"python -m fd_sync.simulators: cannot listen on 127.0.0.1:{args.port} "
            f"({exc.strerror}): pick another --port, or 0 for a free one",
            file=sys.stderr,
        )
        return 64
    if args.which == "servicenow":
        hello: dict[str, Any] = {
            "url": sim.url,
            "username": sim.username,
            "password": sim.password,
            "incidents": args.incidents,
            "open": len(sim.open_sys_ids()),
            "oldest": oldest,
            "seed_seconds": round(time.perf_counter() - started, 3),
        }
    else:
        hello = {
            "url": receiver.url,
            "push_url_standard": receiver.push_url_standard,
            "push_url_servicenow": receiver.push_url_servicenow,
            "app_key": receiver.app_key,
            "api_domain": receiver.api_domain,  # [flashduty] api_domain for the OpenAPI
        }
    if stop is not None:
        server.controls = commands  # before the hello: a client may call ctl at once
    print(json.dumps(hello), flush=True)
    try:
        if stop is None:
            serve(commands)
        else:
            while not stop.wait(1.0):
                pass
    finally:
        server.stop()
    return 0


def stop_on_signals() -> threading.Event:
    """Set on SIGTERM or Ctrl-C: the simulator serves until then, whatever standard input
    does (nohup, &, systemd-run)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def control(url: str, command: str, fields: list[str]) -> int:
    """POST one command to a running simulator; print its JSON answer."""
    body: dict[str, Any] = {}
    if command in ("update", "resolve", "note", "journal") and fields and "=" not in fields[0]:
        body["number"] = fields.pop(0)
    for field_text in fields:
        key, sep, value = field_text.partition("=")
        if not sep:
            print(
                f"python -m fd_sync.simulators ctl: {field_text!r} is not key=value",
                file=sys.stderr,
            )
            return 64
        body[key] = value
    request = urllib.request.Request(
        url.rstrip("/") + CONTROL_PREFIX + command,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(), file=sys.stderr)
        return 64
    except OSError as exc:
        print(f"python -m fd_sync.simulators ctl: no simulator at {url} ({exc})", file=sys.stderr)
        return 75


if __name__ == "__main__":
    sys.exit(main())

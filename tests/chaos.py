"""The chaos soak: a real ``fd-sync run`` against the simulators while everything goes wrong.

A driver mutates ServiceNow at random (creates, updates, resolves, reopens,
reassignments, bursts of 500 changes in one second, rows that become visible
late), injects faults on both sides (429 with and without Retry-After, HTML
5xx, dropped connections, answers slower than the client's timeout, short ACL
pages, duplicated rows) and SIGKILLs the daemon at random moments, restarting
it each time. Then the faults stop, one clean cycle runs, and the figures are
checked: Flashduty's open alerts equal ServiceNow's open incidents, every
incident's events alternate create/resolve, nothing is pending or dead, and
every duplicate is explained by a kill or a too-slow answer.

``tests/test_soak.py`` runs a short soak in ``make test``; ``make soak`` runs
``python -m tests.chaos --minutes 10`` and prints the figures.

With ``--ledger postgres`` (``make soak LEDGER=postgres``) the ledger is a throwaway
PostgreSQL cluster shared by two daemons, as on two jump hosts; the kills go to whichever
leads, and the figures add the failovers and the longest time without a leader.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.http import Fault
from fd_sync.simulators.servicenow import ServiceNowSim, SimClock
from tests import postgres

LOOKBACK = 30  # seconds; late rows become visible well within it
DELETION_CHECK = 3  # seconds of ServiceNow time between looks at sys_audit_delete
CLIENT_TIMEOUT = 2  # seconds, for both remotes: a "slow" answer takes longer
TABLE = "/api/now/table/"
PUSH = "/event/push/"
GROUPS = ("Network", "Database", "Service Desk", "Messaging")


@dataclass
class Figures:
    seconds: float = 0.0
    settle_seconds: float = 0.0  # from "faults stop" to the clean cycle's end
    cycles: int = 0
    cycles_ok: int = 0
    changes: int = 0
    incidents: int = 0
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    kills: int = 0
    deletions: int = 0
    events_delivered: int = 0
    duplicates: int = 0
    duplicates_explainable: int = 0  # kills + answers slower than the client's timeout
    dead: int = 0
    pending: int = 0
    open_servicenow: int = 0
    open_flashduty: int = 0
    losses: int = 0  # incidents whose alert state disagrees with ServiceNow
    broken_histories: int = 0  # incidents whose events do not alternate create/resolve
    ledger: str = "sqlite"
    failovers: int = 0  # PostgreSQL: leaders killed and replaced by the other daemon
    longest_without_leader: float = 0.0  # seconds from a leader's SIGKILL to the next leader

    def table(self) -> str:
        rows = [
            ("duration of the chaos", f"{self.seconds:.0f} s"),
            ("then, to drain and settle", f"{self.settle_seconds:.0f} s"),
            ("daemon cycles (ok)", f"{self.cycles} ({self.cycles_ok})"),
            ("incidents", self.incidents),
            ("changes in ServiceNow", self.changes),
            ("  of which deletions", self.deletions),
            ("faults injected", sum(self.faults.values())),
            *((f"  {kind}", n) for kind, n in sorted(self.faults.items())),
            ("ledger", self.ledger + (" (two daemons)" if self.ledger == "postgres" else "")),
            ("SIGKILLs of the daemon" + ("s' leader" if self.failovers else ""), self.kills),
            *(
                [
                    ("failovers", self.failovers),
                    ("longest time without a leader", f"{self.longest_without_leader:.2f} s"),
                ]
                if self.ledger == "postgres"
                else []
            ),
            ("events delivered", self.events_delivered),
            (
                "duplicates",
                f"{self.duplicates} (at most {self.duplicates_explainable} "
                "explainable by kills and too-slow answers)",
            ),
            ("dead events", self.dead),
            ("pending events", self.pending),
            ("open in ServiceNow / Flashduty", f"{self.open_servicenow} / {self.open_flashduty}"),
            ("losses", self.losses),
            ("broken histories", self.broken_histories),
        ]
        width = max(len(str(k)) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    @property
    def ok(self) -> bool:
        return (
            self.losses == 0
            and self.broken_histories == 0
            and self.dead == 0
            and self.pending == 0
            and self.duplicates <= self.duplicates_explainable
        )


def toml(document: dict[str, dict[str, Any]]) -> str:
    out = []
    for section, values in document.items():
        out.append(f"[{section}]")
        out.extend(f"{k} = {json.dumps(v)}" for k, v in values.items())
    return "\n".join(out) + "\n"


class Soak:
    def __init__(
        self,
        workdir: Path,
        *,
        seed: int,
        push_format: str = "servicenow",
        ledger: str = "sqlite",
        log: Callable[[str], None] = print,
    ) -> None:
        self.rng = random.Random(seed)
        self.cluster: postgres.Cluster | None = None
        self.pg_database = ""
        self.workdir = workdir
        self.log = log
        self.sn = ServiceNowSim(clock=SimClock()).start()
        self.fd = FlashdutySim().start()
        self.figures = Figures()
        self.mismatches: list[str] = []  # incidents open on one side only, after count()
        self.database = workdir / "fd-sync.db"
        self.config = workdir / "config.toml"
        self.figures.ledger = ledger
        sync: dict[str, Any] = {"database": str(self.database)}
        if ledger == "postgres":
            self.cluster = postgres.start_cluster()
            if self.cluster is None:
                raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
            self.pg_database = self.cluster.new_database()
            sync = {
                "database": self.cluster.url(self.pg_database),
                "database_password": postgres.PASSWORD,
                "failover_seconds": 5,
            }
        push_url = (
            self.fd.push_url_standard if push_format == "standard" else self.fd.push_url_servicenow
        )
        self.config.write_text(
            toml(
                {
                    "servicenow": {
                        "instance_url": self.sn.url,
                        "username": self.sn.username,
                        "password": self.sn.password,
                        "page_size": 50,
                        "timeout_seconds": CLIENT_TIMEOUT,
                        "max_attempts": 3,
                    },
                    "flashduty": {
                        "push_url": push_url,
                        "timeout_seconds": CLIENT_TIMEOUT,
                        "max_attempts": 3,
                    },
                    "sync": {
                        **sync,
                        "lookback_seconds": LOOKBACK,
                        "poll_interval_seconds": 1,
                        "deletion_check_seconds": DELETION_CHECK,
                    },
                }
            )
        )
        self.config.chmod(0o600)
        self.groups = [self.sn.add_group(name) for name in GROUPS]
        self.open: list[str] = []
        self.closed: list[str] = []
        self.hidden: dict[str, float] = {}  # sys_id -> when it becomes visible again
        self.acl: dict[str, float] = {}
        self.daemon: subprocess.Popen[bytes] | None = None
        self.daemons: list[subprocess.Popen[bytes]] = []  # PostgreSQL: leader and standby
        self.stderr = (workdir / "daemon.log").open("ab")

    # --- the daemons --------------------------------------------------------------------

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {"PYTHONUNBUFFERED": "1", "FD_SYNC_LOG_FORMAT": "json", "PATH": "/usr/bin:/bin"}
        return subprocess.Popen(
            [sys.executable, "-m", "fd_sync", "--config", str(self.config), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )

    def start_daemon(self) -> None:
        if self.cluster is None:
            self.daemon = self._spawn()
            return
        self.daemons = [d for d in self.daemons if d.poll() is None]
        while len(self.daemons) < 2:
            self.daemons.append(self._spawn())

    def leader_pid(self) -> int | None:
        assert self.cluster is not None
        rows = self.cluster.sql(
            "SELECT application_name FROM pg_stat_activity WHERE datname = "
            f"'{self.pg_database}' AND application_name LIKE 'fd-sync leader %'"
        )
        return int(rows[0][0].rsplit(":", 1)[1]) if rows else None

    def kill_daemon(self) -> None:
        if self.cluster is not None:
            self.kill_leader()
            return
        assert self.daemon is not None
        self.daemon.send_signal(signal.SIGKILL)
        self.daemon.wait()
        self.figures.kills += 1
        self.start_daemon()

    def kill_leader(self) -> None:
        """SIGKILL whichever daemon leads, time the gap until the other leads, restart it."""
        pid = self.leader_pid()
        victim = next((d for d in self.daemons if d.pid == pid), None)
        if victim is None:
            return  # between leaders already (or a leader not yet elected)
        killed = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.figures.kills += 1
        while (leader := self.leader_pid()) in (None, pid) and time.monotonic() - killed < 60:
            time.sleep(0.05)  # another process's session: no event to await
        if leader not in (None, pid):
            self.figures.failovers += 1
            gap = time.monotonic() - killed
            self.figures.longest_without_leader = max(self.figures.longest_without_leader, gap)
        self.daemons.remove(victim)
        self.daemons.append(self._spawn())  # the host comes back, as a standby

    def stop_daemon(self) -> int:
        codes = []
        for proc in [self.daemon] if self.cluster is None else self.daemons:
            assert proc is not None
            proc.send_signal(signal.SIGTERM)
            codes.append(proc.wait(timeout=60))
        return max(codes)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Read the daemons' ledger, whichever engine holds it (read-only)."""
        if self.cluster is not None:
            import psycopg

            conninfo = self.cluster.url(self.pg_database)
            with psycopg.connect(conninfo, password=postgres.PASSWORD, autocommit=True) as conn:
                return conn.execute(sql.replace("?", "%s"), params or []).fetchall()  # type: ignore[arg-type]
        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, params or []).fetchall()
        finally:
            conn.close()

    # --- ServiceNow changes -------------------------------------------------------------

    def changed(self, n: int = 1) -> None:
        self.figures.changes += n

    def create(self) -> None:
        row = self.sn.create(
            short_description=f"incident {self.figures.incidents}",
            urgency=self.rng.choice("123"),
            assignment_group=self.rng.choice(self.groups),
        )
        self.open.append(row["sys_id"])
        self.figures.incidents += 1
        self.changed()

    def update(self) -> None:
        if self.open:
            sys_id = self.rng.choice(self.open)
            field_, value = self.rng.choice(
                [
                    ("short_description", f"now {self.rng.randint(0, 10**6)}"),
                    ("urgency", self.rng.choice("123")),
                    ("state", self.rng.choice("23")),
                    ("work_notes", "looked into it"),
                ]
            )
            self.sn.update(sys_id, **{field_: value})
            self.changed()

    def reassign(self) -> None:
        if self.open:
            self.sn.update(
                self.rng.choice(self.open), assignment_group=self.rng.choice(self.groups)
            )
            self.changed()

    def resolve(self) -> None:
        if self.open:
            sys_id = self.open.pop(self.rng.randrange(len(self.open)))
            self.sn.update(sys_id, state=self.rng.choice("678"))
            self.closed.append(sys_id)
            self.changed()

    def delete(self) -> None:
        """Someone deletes an incident: only sys_audit_delete tells."""
        pool = self.open if self.open and self.rng.random() < 0.8 else self.closed
        if pool:
            sys_id = pool.pop(self.rng.randrange(len(pool)))
            self.hidden.pop(sys_id, None)
            self.acl.pop(sys_id, None)
            self.sn.acl_hidden.discard(sys_id)
            self.sn.reveal(sys_id)
            self.sn.delete(sys_id)
            self.figures.deletions += 1
            self.changed()

    def reopen(self) -> None:
        if self.closed:
            sys_id = self.closed.pop(self.rng.randrange(len(self.closed)))
            self.sn.update(sys_id, state="2")
            self.open.append(sys_id)
            self.changed()

    def burst(self) -> None:
        """500 changes stamped with the same second."""
        stamp = self.sn.clock.text()
        for _ in range(500):
            row = self.sn.create(
                updated_on=stamp,
                short_description="burst",
                urgency="3",
                assignment_group=self.rng.choice(self.groups),
            )
            self.open.append(row["sys_id"])
        self.figures.incidents += 500
        self.changed(500)

    def late_row(self) -> None:
        """A change committed now that becomes visible only later, within the look-back."""
        if self.open:
            sys_id = self.rng.choice(self.open)
            self.sn.update(sys_id, short_description="committed late")
            self.sn.hide(sys_id)
            self.hidden[sys_id] = time.monotonic() + self.rng.uniform(1, LOOKBACK / 2)
            self.changed()

    def short_acl_pages(self) -> None:
        """Rows the integration user briefly cannot read, soon after they changed: pages
        come back short. Only rows changed within half the look-back: a row hidden during
        the one scan that passes its sys_updated_on, and shown again later than the
        look-back without a new sys_updated_on, is invisible to any poller (README,
        Reliability); the soak checks what fd-sync promises, not what no poller can."""
        recent = self.sn.clock.text(-LOOKBACK / 2)
        candidates = [s for s in self.open if self.sn.incident(s)["sys_updated_on"] >= recent]
        for sys_id in self.rng.sample(candidates, min(len(candidates), 20)):
            self.sn.acl_hidden.add(sys_id)
            self.acl[sys_id] = time.monotonic() + self.rng.uniform(1, LOOKBACK / 2)
        self.figures.faults["ServiceNow short ACL pages"] += 1

    def reveal_due(self, everything: bool = False) -> None:
        now = time.monotonic()
        for sys_id, when in list(self.hidden.items()):
            if everything or when <= now:
                self.sn.reveal(sys_id)
                del self.hidden[sys_id]
        for sys_id, when in list(self.acl.items()):
            if everything or when <= now:
                self.sn.acl_hidden.discard(sys_id)
                del self.acl[sys_id]

    # --- faults -------------------------------------------------------------------------

    def fault(self, side: str) -> None:
        sim, path = (self.sn, TABLE) if side == "ServiceNow" else (self.fd, PUSH)
        kind, fault = self.rng.choice(
            [
                (
                    "429 with Retry-After",
                    Fault(status=429, headers={"Retry-After": "1"}, body="{}"),
                ),
                ("429 without Retry-After", Fault(status=429, body="{}")),
                ("HTML 5xx", Fault(status=self.rng.choice([500, 502, 503, 504]))),
                ("dropped connection", Fault(drop=True)),
                # Handled at once, answered after the client gave up: the client cannot
                # know, retries, and the receiver sees a duplicate. (A receiver that
                # applied an abandoned request *after* later ones would reorder them;
                # no client can prevent that over plain HTTP, see the README.)
                ("answer slower than the timeout", Fault(slow_answer=CLIENT_TIMEOUT + 0.5)),
            ]
        )
        fault.path = path
        fault.times = self.rng.randint(1, 3)
        sim.inject(fault)
        self.figures.faults[f"{side} {kind}"] += 1

    def duplicated_rows(self) -> None:
        self.sn.duplicate_rows += self.rng.randint(1, 3)
        self.figures.faults["ServiceNow duplicated rows"] += 1

    # --- the run ------------------------------------------------------------------------

    def run(self, seconds: float) -> Figures:
        # Install first: the first cycle records the present without paging (by design),
        # so incidents created before it would rightly never be alerted.
        self.start_daemon()
        if not self.wait_for_clean_cycle(after=time.time() - 1, timeout=60):
            raise RuntimeError("the daemon never completed its first cycle")
        started = time.monotonic()
        for _ in range(20):
            self.create()
        actions: list[tuple[float, Callable[[], None]]] = [
            (8, self.create),
            (10, self.update),
            (4, self.reassign),
            (5, self.resolve),
            (2, self.reopen),
            (0.7, self.delete),
            (0.03, self.burst),
            (2, self.late_row),
            (1, self.short_acl_pages),
            (1.5, self.duplicated_rows),
            # Faults queue until they fire: too many and the remote is simply down for
            # good. These rates leave a mix of failed and clean cycles.
            (1.0, lambda: self.fault("ServiceNow")),
            (1.5, lambda: self.fault("Flashduty")),
            (0.6, self.kill_daemon),
        ]
        weights = [w for w, _ in actions]
        # At least one kill and one burst, whatever the dice say.
        forced = {
            self.kill_daemon: started + seconds * self.rng.uniform(0.3, 0.7),
            self.burst: started + seconds * self.rng.uniform(0.1, 0.5),
        }
        while time.monotonic() - started < seconds:
            self.reveal_due()
            for action, when in list(forced.items()):
                if time.monotonic() >= when:
                    del forced[action]
                    action()
            self.rng.choices([a for _, a in actions], weights)[0]()
            time.sleep(self.rng.uniform(0.02, 0.25))  # the driver's pace, not synchronisation
        return self.settle(started)

    def settle(self, started: float) -> Figures:
        """Stop the faults, wait for one clean cycle that started after that, and count."""
        self.sn.clear_faults()
        self.fd.clear_faults()
        self.sn.duplicate_rows = 0
        self.reveal_due(everything=True)
        calm = time.monotonic()
        self.log("faults stopped; waiting for a clean cycle")
        # The backlog drains at Flashduty's 1000 events a minute: wait while it shrinks.
        # A clean cycle that starts after a deletion check has become due again.
        clean = self.wait_for_clean_cycle(
            after=time.time() + DELETION_CHECK, timeout=120, while_draining=True
        )
        self.figures.seconds = calm - started
        self.figures.settle_seconds = time.monotonic() - calm
        self.count(clean)
        self.stop_daemon()
        return self.figures

    def wait_for_clean_cycle(
        self, *, after: float, timeout: float, while_draining: bool = False
    ) -> bool:
        """A cycle started after ``after`` and ended ok (so nothing is pending or dead).

        Gives up after ``timeout`` seconds without progress; with ``while_draining``,
        events still arriving at Flashduty count as progress."""
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(after + 1))
        last_progress, arrived = time.monotonic(), 0
        while time.monotonic() - last_progress < timeout:
            if any(d.poll() is not None for d in [*self.daemons, self.daemon] if d):
                self.start_daemon()  # it must not die, but if it did, the figures will say
            try:
                clean = self.query(
                    "SELECT COUNT(*) FROM runs WHERE started_at >= ? AND exit_code = 0", [since]
                )[0][0]
            except Exception:
                clean = 0
            if clean:
                return True
            delivered = len(self.fd.events())
            if while_draining and delivered > arrived:
                arrived, last_progress = delivered, time.monotonic()  # events still arriving
            time.sleep(1)  # polling another process's ledger: no event to await
        return False

    def count(self, clean: bool) -> None:
        f = self.figures
        f.cycles = self.query("SELECT COUNT(*) FROM runs WHERE command = 'run'")[0][0]
        f.cycles_ok = self.query(
            "SELECT COUNT(*) FROM runs WHERE command = 'run' AND exit_code = 0"
        )[0][0]
        statuses = dict(self.query("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
        f.dead = statuses.get("dead", 0)
        f.pending = statuses.get("pending", 0)
        f.events_delivered = len(self.fd.events())
        f.duplicates = self.fd.duplicates()
        # A kill can orphan the one push in flight; every push answered slower than the
        # client's timeout was processed although the client gave up and retried. (A
        # fault covers 1-3 requests, so count the requests it hit, not the faults.)
        f.duplicates_explainable = f.kills + self.fd.faults_fired.get("slow response", 0)
        sn_open = self.sn.open_sys_ids()
        fd_open = self.fd.open_keys()
        f.open_servicenow, f.open_flashduty = len(sn_open), len(fd_open)
        f.losses = len(sn_open ^ fd_open) + (0 if clean else 1)
        self.mismatches = sorted(sn_open ^ fd_open)
        for kinds in self.fd.history().values():
            if not alternates(kinds):
                f.broken_histories += 1

    def explain(self, limit: int = 5) -> str:
        """For each mismatching incident: ServiceNow's row, the ledger's, Flashduty's events."""
        out = []
        for sys_id in self.mismatches[:limit]:
            try:
                row = self.sn.incident(sys_id)
                sn = f"state {row['state']} at {row['sys_updated_on']} mod {row['sys_mod_count']}"
            except KeyError:
                sn = "deleted"
            ledger = self.query(
                "SELECT state, updated_on, mod_count, alert_open FROM incidents WHERE sys_id = ?",
                [sys_id],
            )
            events = self.query(
                "SELECT id, kind, status, attempts FROM outbox WHERE sys_id = ? ORDER BY id",
                [sys_id],
            )
            received = [
                (e.kind, e.duplicate, round(e.at, 2)) for e in self.fd.events() if e.key == sys_id
            ]
            out.append(
                f"{sys_id}: servicenow {sn}; ledger {ledger}; outbox {events}; flashduty {received}"
            )
        return "\n".join(out)

    def close(self) -> None:
        for proc in [self.daemon, *self.daemons]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        self.stderr.close()
        self.sn.stop()
        self.fd.stop()
        if self.cluster is not None:
            self.cluster.destroy()


def alternates(kinds: list[str]) -> bool:
    """create and resolve alternate, starting with create; updates only while open."""
    is_open = False
    for kind in kinds:
        if kind == "create":
            if is_open:
                return False
            is_open = True
        elif kind == "resolve":
            if not is_open:
                return False
            is_open = False
        elif not is_open:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the ledger and log")
    parser.add_argument(
        "--format",
        choices=["standard", "servicenow"],
        default="servicenow",
        help="the push format the daemon sends (servicenow by default)",
    )
    parser.add_argument(
        "--ledger",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: two daemons share a throwaway PostgreSQL ledger; kills hit the leader",
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    with tempfile.TemporaryDirectory(prefix="fd-sync-soak-") as tmp_dir:
        tmp = args.keep or tmp_dir
        Path(tmp).mkdir(parents=True, exist_ok=True)
        soak = Soak(Path(tmp), seed=seed, push_format=args.format, ledger=args.ledger)
        print(
            f"soak: {args.minutes:g} min, seed {seed}, {args.format} format, {args.ledger} "
            f"ledger; command: python -m tests.chaos --minutes {args.minutes:g} --seed {seed}"
            f" --ledger {args.ledger}"
        )
        try:
            figures = soak.run(args.minutes * 60)
            details = "" if figures.ok else soak.explain()  # before close: it reads the ledger
        finally:
            soak.close()
        print(figures.table())
        print("result: " + ("PASS" if figures.ok else "FAIL"))
        if not figures.ok:
            print(details)
            print((Path(tmp) / "daemon.log").read_text()[-5000:])
        return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())

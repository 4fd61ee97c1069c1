"""Two `fd-sync run` processes on one PostgreSQL ledger: one leads, one stands by, and
the outbox's promises hold across every way a leader can go (issue 13).

Each daemon is a real process with its own notify socket (as on two jump hosts); the
ledger is a real PostgreSQL cluster; failures are real: SIGKILL, pg_terminate_backend,
a server restart, SIGSTOP. Pushes are parked at the simulator to fail a leader at the
worst moment, between "attempted" and "delivered".
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import postgres
from tests.helpers.processes import NotifySocket, child_env, fd_sync_command, is_status
from tests.helpers.simulated import open_incident

PUSH = "/event/push/"
FAILOVER_SECONDS = 6


class Host:
    """One jump host: a daemon, its notify socket, and its log lines as they come."""

    def __init__(
        self, name: str, config: Path, folder: Path, *, prefix: list[str] | None = None
    ) -> None:
        self.name = name
        self.notify = NotifySocket(folder / f"notify-{name}.sock")
        self.proc = subprocess.Popen(
            [*(prefix or []), *fd_sync_command("--config", str(config), "run")],
            env=child_env({"NOTIFY_SOCKET": str(self.notify.path)}),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                record = json.loads(line)
            except ValueError:
                record = {"event": "text", "text": line}
            with self.changed:
                self.lines.append(record)
                self.changed.notify_all()

    def logged(self, event: str) -> list[dict[str, Any]]:
        with self.changed:
            return [r for r in self.lines if r.get("event") == event]

    def wait_logged(self, event: str, count: int = 1, timeout: float = 60) -> dict[str, Any]:
        """The first line of ``event``, once ``count`` of them were logged."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while sum(r.get("event") == event for r in self.lines) < count:
                if not self.changed.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"{self.name} never logged {event}: {self.lines[-5:]}")
            return next(r for r in self.lines if r.get("event") == event)

    def delivered_between(self, first: str, then: str) -> int:
        """Pushes this host acknowledged after it logged ``first`` and before ``then``."""
        with self.changed:
            events = [r.get("event") for r in self.lines]
        if first not in events:
            return 0
        after = events[events.index(first) :]
        return after[: after.index(then) if then in after else None].count("event_delivered")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        self.notify.close()


@pytest.fixture
def cluster() -> Iterator[postgres.Cluster]:
    """A cluster of the test's own: these tests restart and terminate things."""
    if postgres.bin_dir() is None:
        postgres.shared_cluster()  # skips, or fails in CI, with the reason
    made = postgres.start_cluster()
    assert made is not None
    yield made
    made.destroy()


@pytest.fixture
def hosts(
    tmp_path: Path, cluster: postgres.Cluster, write_config: Callable[..., Path]
) -> Iterator[Callable[[str], Host]]:
    database = cluster.new_database()
    config = write_config(
        sync={
            "database": cluster.url(database),
            "database_password": postgres.PASSWORD,
            "poll_interval_seconds": 1,
            "failover_seconds": FAILOVER_SECONDS,
        }
    )
    started: list[Host] = []

    def start(name: str) -> Host:
        host = Host(name, config, tmp_path)
        started.append(host)
        return host

    start.database = database  # type: ignore[attr-defined]
    start.config = config  # type: ignore[attr-defined]
    yield start
    for host in started:
        host.stop()


def leader_and_standby(start: Callable[[str], Host]) -> tuple[Host, Host]:
    first = start("a")
    first.notify.wait_for(lambda m: m.get("READY") == "1")
    first.notify.wait_for(is_status("last cycle"))
    second = start("b")
    ready = second.notify.wait_for(lambda m: m.get("READY") == "1")
    assert ready["STATUS"].startswith("standby (leader: ")
    assert f":{first.proc.pid} since " in ready["STATUS"]
    return first, second


def parked_mid_delivery(
    hosts: Callable[[str], Host], servicenow, flashduty, incidents: int
) -> tuple[Host, Host, set[str], threading.Event]:
    """A leader and a standby, with the leader's second push parked at Flashduty: the
    moment between "attempted" and "delivered" at which a leader can fail worst."""
    leader, standby = leader_and_standby(hosts)
    keys = {open_incident(servicenow)["sys_id"] for _ in range(incidents)}
    release = threading.Event()
    held = flashduty.inject(hold=release, path=PUSH, after=1)
    assert held.arrived.wait(60)
    return leader, standby, keys, release


def test_only_the_leader_delivers_and_the_standby_waits_ready(
    servicenow, flashduty, hosts, run_fd_sync
):
    leader, standby = leader_and_standby(hosts)
    rows = [open_incident(servicenow) for _ in range(3)]
    assert flashduty.wait_for(3, timeout=60)
    leader.wait_logged("event_delivered", count=3)
    standby.wait_logged("daemon_started")
    assert flashduty.open_keys() == {r["sys_id"] for r in rows}
    assert len(leader.logged("event_delivered")) == 3
    assert standby.logged("event_delivered") == []
    assert standby.proc.poll() is None and leader.proc.poll() is None
    standby.wait_logged("standby_checked_in")
    shown = run_fd_sync("--config", str(hosts.config), "status")  # type: ignore[attr-defined]
    assert shown.code == 0, shown.output
    assert "(postgresql)" in shown.stdout
    assert re.search(rf"leader +\S+:{leader.proc.pid} since ", shown.stdout), shown.stdout
    assert re.search(rf"standbys +\S+:{standby.proc.pid} \(since ", shown.stdout)
    assert re.search(r"last failover +never", shown.stdout)
    assert re.search(rf"daemon +pid \S+:{leader.proc.pid}, ", shown.stdout)


def test_kill_9_of_the_leader_hands_over_within_failover_seconds_losing_nothing(
    servicenow, flashduty, hosts, run_fd_sync
):
    leader, standby, keys, release = parked_mid_delivery(hosts, servicenow, flashduty, 4)
    killed_at = time.monotonic()
    leader.proc.kill()
    leader.proc.wait(timeout=30)
    release.set()  # the parked push lands anyway: the one event in flight
    standby.notify.wait_for(is_status("leader since"), timeout=FAILOVER_SECONDS)
    took = time.monotonic() - killed_at
    assert took <= FAILOVER_SECONDS, took
    assert flashduty.wait_open(keys, timeout=60)
    assert flashduty.duplicates() <= 1
    assert all(kinds == ["create"] for kinds in flashduty.history().values())
    elected = standby.wait_logged("leader_elected")
    assert elected["failover"] is True and elected["previous"].endswith(f":{leader.proc.pid}")
    shown = run_fd_sync("--config", str(hosts.config), "status")  # type: ignore[attr-defined]
    assert re.search(
        rf"last failover +\S+: \S+:{standby.proc.pid} took over from \S+:{leader.proc.pid}",
        shown.stdout,
    ), shown.stdout


def test_a_leader_whose_session_is_terminated_steps_down_without_sending_again(
    servicenow, flashduty, hosts, cluster
):
    leader, standby, keys, release = parked_mid_delivery(hosts, servicenow, flashduty, 4)
    assert cluster.terminate("fd-sync leader %", hosts.database) == 1  # type: ignore[attr-defined]
    release.set()  # Flashduty accepts the parked push; the leader cannot commit it
    leader.wait_logged("leader_lost_session")
    assert flashduty.wait_open(keys, timeout=60)
    # Between losing its session and winning the lock again (if it did), nothing.
    assert leader.delivered_between("leader_lost_session", "leader_elected") == 0
    assert flashduty.duplicates() <= 1  # the parked push, sent again by the next leader
    assert leader.proc.poll() is None and standby.proc.poll() is None


def test_a_postgresql_restart_mid_cycle_leaves_both_running_and_one_resumes(
    servicenow, flashduty, hosts, cluster
):
    leader, standby, keys, release = parked_mid_delivery(hosts, servicenow, flashduty, 4)
    cluster.restart()
    release.set()
    assert flashduty.wait_open(keys, timeout=90)
    assert flashduty.duplicates() <= 1
    assert leader.proc.poll() is None and standby.proc.poll() is None
    later = open_incident(servicenow)
    assert flashduty.wait_open(keys | {later["sys_id"]}, timeout=60)
    assert flashduty.duplicates() <= 1


def test_a_frozen_leader_keeps_the_lock_and_after_sigcont_sends_nothing_twice(
    servicenow, flashduty, hosts
):
    leader, standby, keys, release = parked_mid_delivery(hosts, servicenow, flashduty, 3)
    leader.proc.send_signal(signal.SIGSTOP)
    release.set()
    # Its session lives (the kernel still answers keepalives): no second leader appears
    # in twice the failover time.
    with pytest.raises(TimeoutError):
        standby.notify.wait_for(is_status("leader since"), timeout=2 * FAILOVER_SECONDS)
    leader.proc.send_signal(signal.SIGCONT)
    assert flashduty.wait_open(keys, timeout=60)
    later = open_incident(servicenow)
    assert flashduty.wait_open(keys | {later["sys_id"]}, timeout=60)
    # The parked push outlived its deadline while frozen: the one event in flight may be
    # sent again, nothing else.
    assert flashduty.duplicates() <= 1
    assert standby.logged("event_delivered") == []


def test_a_daemon_started_while_postgresql_is_down_stands_by_until_it_answers(
    servicenow, flashduty, hosts, cluster
):
    cluster.stop()
    host = hosts("a")
    ready = host.notify.wait_for(lambda m: m.get("READY") == "1")
    assert ready["STATUS"].startswith("standby (ledger unreachable: "), ready
    assert f"127.0.0.1:{cluster.port}" in ready["STATUS"]
    cluster.start()
    host.notify.wait_for(is_status("last cycle"), timeout=60)  # it leads, and cycles
    incident = open_incident(servicenow)
    assert flashduty.wait_open({incident["sys_id"]}, timeout=60)


def test_once_from_another_host_runs_between_the_leaders_cycles_without_double_sending(
    servicenow, flashduty, hosts, run_fd_sync
):
    leader, standby = leader_and_standby(hosts)
    keys = {open_incident(servicenow)["sys_id"] for _ in range(5)}
    config = str(hosts.config)  # type: ignore[attr-defined]
    results = [run_fd_sync("--config", config, "--lock-wait", "30", "once") for _ in range(3)]
    assert [r.code for r in results] == [0, 0, 0], [r.output for r in results]
    assert flashduty.wait_open(keys, timeout=60)
    assert flashduty.duplicates() == 0
    assert all(kinds == ["create"] for kinds in flashduty.history().values())
    assert standby.logged("event_delivered") == [] and leader.proc.poll() is None


def test_a_leader_stopped_cleanly_hands_over_without_counting_a_failover(
    servicenow, flashduty, hosts, run_fd_sync
):
    leader, standby = leader_and_standby(hosts)
    leader.proc.send_signal(signal.SIGTERM)
    assert leader.proc.wait(timeout=30) == 0
    standby.notify.wait_for(is_status("leader since"), timeout=FAILOVER_SECONDS)
    assert standby.wait_logged("leader_elected")["failover"] is False
    incident = open_incident(servicenow)
    assert flashduty.wait_open({incident["sys_id"]}, timeout=60)
    shown = run_fd_sync("--config", str(hosts.config), "status")  # type: ignore[attr-defined]
    assert re.search(r"last failover +never", shown.stdout), shown.stdout
    assert re.search(r"standbys +none checked in", shown.stdout), shown.stdout


def test_metrics_say_who_leads_and_count_the_failover(
    servicenow, flashduty, write_config, cluster, tmp_path
):
    from tests.system.test_metrics import get

    database = cluster.new_database()
    sync = {
        "database": cluster.url(database),
        "database_password": postgres.PASSWORD,
        "poll_interval_seconds": 1,
        "failover_seconds": FAILOVER_SECONDS,
    }
    ports = {name: postgres.free_port() for name in "ab"}

    def start(name: str) -> Host:
        metrics = {"listen": f"127.0.0.1:{ports[name]}"}
        config = write_config(name=f"{name}.toml", sync=sync, metrics=metrics)
        return Host(name, config, tmp_path)

    hosts = {"a": start("a")}
    try:
        hosts["a"].notify.wait_for(is_status("last cycle"))
        hosts["b"] = start("b")
        hosts["b"].notify.wait_for(lambda m: m.get("READY") == "1")
        _, leading = get(f"http://127.0.0.1:{ports['a']}/metrics")
        _, standing = get(f"http://127.0.0.1:{ports['b']}/metrics")
        assert "fdsync_leader 1.0" in leading and "fdsync_leader 0.0" in standing
        assert "fdsync_failovers_total 0.0" in standing
        status, body = get(f"http://127.0.0.1:{ports['b']}/healthz")
        assert status == 200 and "standing by" in body  # a standby is healthy as such

        hosts["a"].proc.kill()
        hosts["b"].notify.wait_for(is_status("leader since"), timeout=FAILOVER_SECONDS)
        _, took_over = get(f"http://127.0.0.1:{ports['b']}/metrics")
        assert "fdsync_leader 1.0" in took_over and "fdsync_failovers_total 1.0" in took_over
    finally:
        for host in hosts.values():
            host.stop()

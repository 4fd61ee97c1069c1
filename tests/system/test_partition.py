"""A network partition between the leader's host and PostgreSQL (issue 13): the server
ends the leader's session by the keepalives fd-sync set from ``failover_seconds``, the
standby takes over within it, and the cut-off leader sends nothing.

Host A is a network namespace joined to this one by a veth pair; its fd-sync reaches
PostgreSQL at the veth address and the simulators through small forwarders there. The
partition is A's end of the link going down: the server's packets to A vanish, with no
RST or FIN, exactly what a cut cable or a dead switch looks like from the server.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests import postgres
from tests.helpers.processes import is_status
from tests.helpers.simulated import open_incident
from tests.system.test_high_availability import FAILOVER_SECONDS, Host

SERVER_IP, HOST_A_IP = "10.213.7.1", "10.213.7.2"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespace() -> Iterator[str]:
    if shutil.which("ip") is None:
        if os.environ.get("CI"):
            pytest.fail("ip (iproute2) is not installed: .ci/run installs it")
        pytest.skip("ip (iproute2) is not installed")
    name = f"fdsync-{secrets.token_hex(3)}"
    outside, inside = f"v{name[-6:]}h", f"v{name[-6:]}n"
    try:
        ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"no network namespaces here ({exc.stderr.decode().strip()}); needs root")
    try:
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", name)
        ip("addr", "add", f"{SERVER_IP}/30", "dev", outside)
        ip("link", "set", outside, "up")
        ip("-n", name, "addr", "add", f"{HOST_A_IP}/30", "dev", inside)
        ip("-n", name, "link", "set", inside, "up")
        ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", outside)
        ip("netns", "del", name)


class Forwarder:
    """TCP from the veth address to a simulator on loopback (host A's way to the sims)."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.server = socket.create_server((SERVER_IP, 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def cluster(namespace: str) -> Iterator[postgres.Cluster]:
    """A cluster that also listens on the veth address, with a password for host A."""
    bindir = postgres.bin_dir()
    if bindir is None:
        postgres.shared_cluster()  # skips, or fails in CI, with the reason
    made = postgres.Cluster(bindir)  # type: ignore[arg-type]
    made.init()
    with (made.data / "postgresql.conf").open("a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1,{SERVER_IP}'\n")
    with (made.data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {HOST_A_IP}/32 scram-sha-256\n")
    made.start()
    made.create_role()
    yield made
    made.destroy()


def test_a_partitioned_leader_loses_its_lock_within_failover_seconds_and_sends_nothing(
    servicenow, flashduty, write_config, cluster, namespace, tmp_path
):
    database = cluster.new_database()
    sync = {
        "database_password": postgres.PASSWORD,
        "poll_interval_seconds": 1,
        "failover_seconds": FAILOVER_SECONDS,
    }
    to_sn, to_fd = Forwarder(servicenow.port), Forwarder(flashduty.port)
    push_url = flashduty.push_url_standard.replace(
        f"127.0.0.1:{flashduty.port}", f"{SERVER_IP}:{to_fd.port}"
    )
    config_a = write_config(
        name="a.toml",
        servicenow={"instance_url": f"http://{SERVER_IP}:{to_sn.port}"},
        flashduty={"push_url": push_url},
        sync={**sync, "database": f"postgresql://fdsync@{SERVER_IP}:{cluster.port}/{database}"},
    )
    config_b = write_config(name="b.toml", sync={**sync, "database": cluster.url(database)})
    leader = Host("a", config_a, tmp_path, prefix=["ip", "netns", "exec", namespace])
    standby = None
    try:
        leader.notify.wait_for(is_status("last cycle"))
        standby = Host("b", config_b, tmp_path)
        ready = standby.notify.wait_for(lambda m: m.get("READY") == "1")
        assert ready["STATUS"].startswith("standby (leader: ")
        first = open_incident(servicenow)
        assert flashduty.wait_open({first["sys_id"]}, timeout=30)  # A delivers, through it all

        cut_at = time.monotonic()
        ip("-n", namespace, "link", "set", f"v{namespace[-6:]}n", "down")
        standby.notify.wait_for(is_status("leader since"), timeout=FAILOVER_SECONDS)
        took = time.monotonic() - cut_at
        print(f"partition: the standby led {took:.2f} s after the cut")  # for the README
        assert took <= FAILOVER_SECONDS, took
        later = open_incident(servicenow)
        assert flashduty.wait_open({first["sys_id"], later["sys_id"]}, timeout=30)
        assert leader.delivered_between("leader_lost_session", "leader_elected") == 0

        ip("-n", namespace, "link", "set", f"v{namespace[-6:]}n", "up")  # the cable is back
        leader.notify.wait_for(is_status("standby (leader: "), timeout=30)
        assert flashduty.duplicates() == 0
        assert standby.logged("event_delivered") and leader.proc.poll() is None
    finally:
        for host in (leader, standby):
            if host is not None:
                host.stop()
        to_sn.close()
        to_fd.close()

"""The simulators as the benchmarks use them: bulk seeding, counts, offset paging, the CLI."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import requests

from fd_sync.simulators.servicenow import ServiceNowSim
from tests.helpers.processes import child_env


def test_bulk_seed_is_deterministic_and_spread():
    a, b = ServiceNowSim(), ServiceNowSim()
    a.seed(500, open_ratio=0.02)
    b.seed(500, open_ratio=0.02)
    assert len(a.open_sys_ids()) == 10
    assert a.open_sys_ids() == b.open_sys_ids()
    stamps = [r["sys_updated_on"] for r in a.incidents()]
    assert len(set(stamps)) == 100  # five rows share each second


def test_total_count_is_the_whole_match_and_offset_pages_cover_it(servicenow):
    servicenow.seed(2500, open_ratio=0.5)
    session = requests.Session()
    session.auth = (servicenow.username, servicenow.password)
    seen: list[str] = []
    for offset in range(0, 3000, 1000):
        answer = session.get(
            f"{servicenow.url}/api/now/table/incident",
            params={
                "sysparm_query": "active=true^ORDERBYsys_updated_on",
                "sysparm_fields": "sys_id",
                "sysparm_limit": "1000",
                "sysparm_offset": str(offset),
            },
            timeout=10,
        )
        assert answer.headers["X-Total-Count"] == "1250"
        seen += [r["sys_id"] for r in answer.json()["result"]]
    assert sorted(seen) == sorted(servicenow.open_sys_ids())
    assert len(seen) == len(set(seen))
    no_count = session.get(
        f"{servicenow.url}/api/now/table/incident",
        params={"sysparm_limit": "1", "sysparm_no_count": "true"},
        timeout=10,
    )
    assert "X-Total-Count" not in no_count.headers


def test_simulator_process_answers_commands():
    proc = subprocess.Popen(
        [sys.executable, "-m", "fd_sync.simulators", "servicenow", "--incidents", "100", "--stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        hello = json.loads(proc.stdout.readline())
        assert hello["url"].startswith("http://127.0.0.1:") and hello["open"] == 2
        proc.stdin.write('{"cmd": "change", "update": 1, "resolve": 1}\n')
        proc.stdin.flush()
        assert len(json.loads(proc.stdout.readline())["sys_ids"]) == 2
        proc.stdin.write('{"cmd": "stats"}\n')
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["open"] == 1
    finally:
        proc.stdin.close()
        assert proc.wait(10) == 0


def simulator(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fd_sync.simulators", *args],
        stdin=subprocess.DEVNULL,  # as under nohup or &: stdin is closed at once
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def ctl(url: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "fd_sync.simulators", "ctl", url, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_simulator_run_by_hand_serves_until_sigterm_and_takes_commands(tmp_path, run_fd_sync):
    sn = simulator("servicenow", "--seed", "5", "--open-ratio", "0.4")
    fd = simulator("flashduty")
    try:
        sn_hello, fd_hello = json.loads(sn.stdout.readline()), json.loads(fd.stdout.readline())
        assert sn.poll() is None and fd.poll() is None  # stdin closed, still serving
        assert len(ctl(sn_hello["url"], "list")["incidents"]) == 5
        config = tmp_path / "try.toml"
        config.write_text(
            "[servicenow]\n"
            f'instance_url = "{sn_hello["url"]}"\n'
            f'username = "{sn_hello["username"]}"\n'
            f'password = "{sn_hello["password"]}"\n'
            "[flashduty]\n"
            f'push_url = "{fd_hello["push_url_servicenow"]}"\n'
            "[sync]\n"
            'database = "try.db"\n'
        )
        config.chmod(0o600)
        assert run_fd_sync("--config", str(config), "once").code == 0  # the baseline
        created = ctl(sn_hello["url"], "create", "short_description=Checkout down", "urgency=1")
        assert run_fd_sync("--config", str(config), "once").code == 0
        assert ctl(fd_hello["url"], "events")["open"] == [created["sys_id"]]
        ctl(sn_hello["url"], "resolve", created["number"])
        ctl(fd_hello["url"], "fault", "status=503", "times=1")
        assert run_fd_sync("--config", str(config), "once").code == 0  # retried past the 503
        received = ctl(fd_hello["url"], "events")
        assert received["open"] == [] and [e["kind"] for e in received["events"]] == [
            "create",
            "resolve",
        ]
    finally:
        for proc in (sn, fd):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0, proc.stderr.read()
            assert "Traceback" not in proc.stderr.read()


def test_a_taken_port_is_one_line_not_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = simulator("flashduty", "--port", str(port))
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 64
    assert stderr.strip().splitlines() == [
        f"python -m fd_sync.simulators: cannot listen on 127.0.0.1:{port} (Address already in "
        "use): pick another --port, or 0 for a free one"
    ]


def test_the_credentials_are_chosen_on_the_command_line():
    sn = simulator("servicenow", "--username", "me", "--password", "pw-123456")
    fd = simulator("flashduty", "--token", "tok-123456", "--integration-key", "key-123456")
    try:
        sn_hello, fd_hello = json.loads(sn.stdout.readline()), json.loads(fd.stdout.readline())
        assert (sn_hello["username"], sn_hello["password"]) == ("me", "pw-123456")
        assert fd_hello["push_url_servicenow"].endswith("/event/push/servicenow/tok-123456")
        assert fd_hello["push_url_standard"].endswith("integration_key=key-123456")
    finally:
        for proc in (sn, fd):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0

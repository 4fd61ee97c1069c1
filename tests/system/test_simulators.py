"""The simulators as the benchmarks use them: bulk seeding, counts, offset paging, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from fd_sync.simulators.servicenow import ServiceNowSim
from tests.conftest import child_env


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
        [sys.executable, "-m", "fd_sync.simulators", "servicenow", "--incidents", "100"],
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

"""The dashboard and the alert rules in deploy/ (issue 25): every metric they name is one
fd-sync exports, every runbook link lands on a section of docs/dashboards.md, and promtool
accepts the rules and passes their unit tests (Debian's prometheus package ships promtool;
.ci/run installs it, and CI fails rather than skips without it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "fd-sync.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "fd-sync.rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "fd-sync.dashboard.json"
NAME = re.compile(r"\bfdsync_[a-z_]+")


def exported() -> set[str]:
    from fd_sync.service.metrics import Metrics

    names = set()
    for family in Metrics(poll_interval=60).registry.collect():
        base = family.name
        if family.type == "counter":
            names |= {f"{base}_total", f"{base}_created"}
        elif family.type == "histogram":
            names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
        else:
            names.add(base)
    return names


def test_every_metric_the_dashboard_and_the_rules_name_is_exported():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = set(NAME.findall("\n".join(exprs))) | set(NAME.findall(RULES.read_text()))
    assert named, "nothing named"
    assert named - exported() == set()


def test_the_dashboard_is_importable_json_with_a_datasource_choice():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "fd-sync" and dashboard["panels"]
    assert {p["id"] for p in dashboard["panels"]} == set(range(1, len(dashboard["panels"]) + 1))
    assert dashboard["templating"]["list"][0]["type"] == "datasource"


def test_every_runbook_link_lands_on_a_section_of_the_docs():
    page = (ROOT / "docs" / "dashboards.md").read_text()
    anchors = {h.strip().lower() for h in re.findall(r"^### (.+)$", page, re.M)}
    links = re.findall(r'runbook_url: "dashboards/#([a-z]+)"', RULES.read_text())
    alerts = re.findall(r"- alert: (\w+)", RULES.read_text())
    assert sorted(links) == sorted(a.lower() for a in alerts)
    assert set(links) <= anchors


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus; .ci/run does)")
    return found


def test_promtool_accepts_the_rules():
    done = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say():
    rules = RULES.read_text()
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == set(re.findall(r"- alert: (\w+)", rules))  # a test for each alert
    done = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr

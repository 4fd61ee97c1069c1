"""Tickets from Flashduty through the real command (issue 20): a kill -9 mid-create leaves
exactly one ticket; ``tickets backfill``, ``status``, ``check``, ``outbox list`` and
``once --dry-run`` say what an operator needs, with the documented exit codes."""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest

from fd_sync.simulators.flashduty_incidents import PUSH_CHANNEL_ID
from tests.helpers.processes import child_env, fd_sync_command

POST = "/api/now/table/incident"
WATCHED = 5550001


@pytest.fixture
def ticket_config(servicenow, flashduty, write_config):
    flashduty.add_channel("Prometheus", channel_id=WATCHED)
    flashduty.add_channel("ServiceNow", channel_id=PUSH_CHANNEL_ID)
    return write_config(
        flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
        writeback={"enabled": True},
        tickets={"enabled": True, "channel_ids": [WATCHED]},
    )


def tickets_of(servicenow, incident_id: str) -> list[dict[str, str]]:
    return [
        row
        for row in servicenow.tables["incident"].values()
        if row.get("correlation_id") == incident_id
    ]


@pytest.mark.parametrize("applied", [False, True], ids=["before-apply", "after-apply"])
def test_a_kill_mid_create_leaves_exactly_one_ticket(
    servicenow, flashduty, ticket_config, run_fd_sync, applied
):
    config = str(ticket_config)
    assert run_fd_sync("--config", config, "once").code == 0  # the first run
    incident_id = flashduty.open_incident("Disk full on db-3", channel_id=WATCHED)
    release = threading.Event()
    if applied:  # ServiceNow creates the ticket; its answer comes too late for fd-sync
        fault = servicenow.inject(slow_answer=60.0, path=POST, method="POST")
        point = fault.handled
    else:  # the POST is parked, then refused unseen: ServiceNow never creates it
        fault = servicenow.inject(hold=release, status=503, path=POST, method="POST")
        point = fault.arrived
    proc = subprocess.Popen(
        fd_sync_command("--config", config, "once"),
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert point.wait(30), "fd-sync never reached the POST"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    release.set()
    servicenow.clear_faults()
    for _ in range(3):
        rerun = run_fd_sync("--config", config, "once")
        assert rerun.code == 0, rerun.output
    assert len(tickets_of(servicenow, incident_id)) == 1
    assert flashduty.events() == []  # the ticket was never pushed back as an alert
    links = flashduty.writes_to(incident_id, "/incident/comment")
    assert len(links) == 1  # and its link-back comment went once


def test_backfill_opens_tickets_for_incidents_already_open(
    servicenow, flashduty, ticket_config, run_fd_sync
):
    config = str(ticket_config)
    older = flashduty.open_incident("Disk full on db-3", channel_id=WATCHED)
    first = run_fd_sync("--config", config, "once")  # the first run: newer incidents only
    assert first.code == 0, first.output
    assert tickets_of(servicenow, older) == []
    preview = run_fd_sync(
        "--config", config, "tickets", "backfill", "--since", "2020-01-01", "--dry-run"
    )
    assert preview.code == 0, preview.output
    assert "would open a ticket for Flashduty #" in preview.stdout
    assert '"Disk full on db-3": urgency 1, impact 1' in preview.stdout
    assert tickets_of(servicenow, older) == []
    done = run_fd_sync("--config", config, "tickets", "backfill", "--since", "2020-01-01")
    assert done.code == 0, done.output
    assert "opened 1 ticket(s)" in done.stdout
    again = run_fd_sync("--config", config, "tickets", "backfill", "--since", "2020-01-01")
    assert "opened 0 ticket(s)" in again.stdout
    assert len(tickets_of(servicenow, older)) == 1
    status = run_fd_sync("--config", config, "status")
    assert "tickets" in status.stdout and "1 opened (1 in the last day)" in status.stdout


def test_a_refused_create_exits_76_naming_the_incident_and_is_listed(
    servicenow, flashduty, ticket_config, run_fd_sync
):
    config = str(ticket_config)
    assert run_fd_sync("--config", config, "once").code == 0
    servicenow.create_policy = ("category",)
    flashduty.open_incident("Disk full on db-3", channel_id=WATCHED)
    refused = run_fd_sync("--config", config, "once")
    assert refused.code == 76, refused.output
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("fd-sync:")]
    assert "Flashduty #" in line and '"Disk full on db-3"' in line
    assert "The following fields are mandatory: category" in line
    listed = run_fd_sync("--config", config, "outbox", "list", "--dead")
    assert " t1 " in f" {listed.stdout}" and "ticket" in listed.stdout
    servicenow.create_policy = ()
    assert run_fd_sync("--config", config, "outbox", "retry", "t1").code == 0
    fixed = run_fd_sync("--config", config, "once")
    assert fixed.code == 0, fixed.output


def test_check_reports_channels_templates_and_what_it_cannot_prove(
    flashduty, ticket_config, run_fd_sync
):
    result = run_fd_sync("--config", str(ticket_config), "check")
    out = result.stdout
    assert f"channel {WATCHED}: the key lists its incidents" in out
    assert "short_description = 'CPU usage high - web-server-01'" in out
    assert "cannot be proved without creating one" in out
    assert "takes only incidents that start after it" in out


def test_check_names_a_watched_channel_the_key_cannot_see(flashduty, write_config, run_fd_sync):
    config = write_config(
        flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
        writeback={"enabled": True},
        tickets={"enabled": True, "channel_ids": [424242]},
    )
    result = run_fd_sync("--config", str(config), "check")
    assert result.code == 78
    assert "channel 424242 is not among the channels the app key sees" in result.stdout


def test_tickets_need_the_write_back_and_channels(write_config, flashduty, run_fd_sync):
    app = {"app_key": flashduty.app_key, "api_domain": flashduty.url}
    no_writeback = write_config(flashduty=app, tickets={"enabled": True, "channel_ids": [1]})
    result = run_fd_sync("--config", str(no_writeback), "check")
    assert result.code == 78
    assert "[tickets] enabled: needs [writeback] enabled = true" in result.stderr
    empty = write_config(
        name="empty.toml", flashduty=app, writeback={"enabled": True}, tickets={"enabled": True}
    )
    result = run_fd_sync("--config", str(empty), "check")
    assert result.code == 78 and "[tickets] channel_ids: is empty" in result.stderr
    lifecycle = write_config(
        name="state.toml",
        flashduty=app,
        writeback={"enabled": True},
        tickets={"enabled": True, "channel_ids": [1], "fields": {"state": "2"}},
    )
    result = run_fd_sync("--config", str(lifecycle), "check")
    assert result.code == 78 and "[tickets] fields.state: is a lifecycle field" in result.stderr
    unknown = write_config(
        name="unknown.toml",
        flashduty=app,
        writeback={"enabled": True},
        tickets={"enabled": True, "channel_ids": [1], "fields": {"short_description": "{host}"}},
    )
    result = run_fd_sync("--config", str(unknown), "check")
    assert result.code == 78 and "unknown field {host}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_explain_of_a_ticket_tells_its_story_and_no_route(
    servicenow, flashduty, ticket_config, run_fd_sync
):
    config = str(ticket_config)
    assert run_fd_sync("--config", config, "once").code == 0
    incident_id = flashduty.open_incident("Disk full on db-3", channel_id=WATCHED)
    assert run_fd_sync("--config", config, "once").code == 0
    (ticket,) = tickets_of(servicenow, incident_id)
    told = run_fd_sync("--config", config, "explain", ticket["number"])
    assert told.code == 0, told.output
    assert f"ticket opened for Flashduty incident {incident_id}: Disk full on db-3" in told.stdout
    assert "a ticket: its changes go to its Flashduty incident" in told.stdout
    assert "route\n" not in told.stdout

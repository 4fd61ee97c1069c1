"""kill -9 a real ``fd-sync once`` while the page a /flashduty command asked for is in
flight: the rerun never pages again from that note (at most the outbox's one re-send of
the event in flight), and the note gets exactly one answer."""

from __future__ import annotations

import signal
import subprocess
import threading

from tests.helpers.processes import child_env, fd_sync_command
from tests.helpers.simulated import open_incident


def test_a_kill_between_the_page_and_its_commit_pages_at_most_twice(
    servicenow, flashduty, write_config, run_fd_sync
):
    servicenow.add_user("Ann Agent", user_name="ann.agent")
    config = write_config(
        "servicenow", flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url}
    )
    assert run_fd_sync("--config", str(config), "once").code == 0  # the baseline
    inc = open_incident(servicenow)
    assert run_fd_sync("--config", str(config), "once").code == 0  # its alert
    servicenow.clock.advance(1)
    servicenow.work_note(inc["sys_id"], "/flashduty page channels=voice", by="ann.agent")
    release = threading.Event()
    held = flashduty.inject(hold=release, path="/event/push/")  # the page, parked
    proc = subprocess.Popen(
        fd_sync_command("--config", str(config), "once"),
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert held.arrived.wait(30), "fd-sync never sent the page"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    release.set()
    flashduty.clear_faults()
    for _ in range(3):
        rerun = run_fd_sync("--config", str(config), "once")
        assert rerun.code == 0, rerun.output
    pages = [e for e in flashduty.events() if e.body.get("personal_channels") == "voice"]
    assert len(pages) + flashduty.duplicates() >= 1 and len(pages) <= 2
    answers = [
        j["value"]
        for j in servicenow.journal(inc["sys_id"], "work_notes")
        if j["sys_created_by"] == servicenow.username
    ]
    assert len(answers) == 1 and "did not repeat it" in answers[0]

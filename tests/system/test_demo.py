"""`make demo` is the first thing a newcomer runs: it must work with no network and no setup."""

from __future__ import annotations


def test_demo_shows_incidents_flowing(run_fd_sync):
    result = run_fd_sync("demo")
    assert result.code == 0, result.output
    out = result.stdout
    assert "-> create" in out and "-> update" in out and "-> resolve" in out
    # Both ways: an ack in the simulated Flashduty arrives as a ServiceNow work note.
    assert "ServiceNow received (write-back, PATCH):" in out
    assert "[Flashduty] Acknowledged by Ann Lee (ann@example.com)" in out
    assert "state -> 2" in out
    # Tickets: a monitoring incident opens one, its ack arrives as a work note, and its
    # resolve in ServiceNow closes the Flashduty incident.
    assert out.count("ServiceNow received (ticket, POST):") == 1
    assert "Flashduty received (OpenAPI): /incident/comment  ServiceNow INC" in out
    assert "Flashduty received (OpenAPI): /incident/resolve" in out
    assert "'Disk 93% full on db-3' is now Closed" in out
    last = out.split("cycle 6:", 1)[1]
    assert "Flashduty received nothing" in last  # nothing fd-sync wrote came back
    assert "received (OpenAPI)" not in last and "received (ticket" not in last
    assert "the two agree" in out
    assert "Traceback" not in result.output


def test_the_demo_ends_with_a_command_that_works_as_printed(tmp_path):
    """`make demo` runs .venv/bin/fd-sync, which is not on PATH: the hint must say so."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("fd-sync")  # as make demo starts it
    done = subprocess.run(
        [str(script), "demo"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    command = done.stdout.strip().splitlines()[-1].split("and run: ", 1)[1].split()
    assert command[1:] == ["--config", "config.toml", "check"]
    program = shutil.which(command[0], path="")  # no PATH: the printed path alone
    assert program is not None, f"{command[0]} does not run as printed"
    assert subprocess.run([program, "--version"], capture_output=True, check=False).returncode == 0

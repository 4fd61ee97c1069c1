"""Progress of a long backfill (issue 25): on a terminal, ``once --since`` rewrites one
line on stderr with pages, incidents read, events queued, rate and how far through the
range it is; never when stderr is not a terminal, nor with ``--quiet``."""

from __future__ import annotations

import os
import pty
import subprocess

from tests.helpers.processes import child_env, fd_sync_command


def run_on_a_terminal(*args: str) -> tuple[int, str]:
    """Run fd-sync with stderr on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        fd_sync_command(*args),
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(60), b"".join(chunks).decode(errors="replace")


def test_a_backfill_on_a_terminal_shows_progress(servicenow, write_config, run_fd_sync):
    servicenow.seed(300, open_ratio=0.1)
    config = str(write_config(servicenow={"page_size": 50}))
    code, shown = run_on_a_terminal("--config", config, "once", "--since", "2000-01-01")
    assert code == 0, shown
    assert "backfill: " in shown and "incident(s) read" in shown and "incidents/s" in shown
    assert "% of the range)" in shown
    quiet = run_on_a_terminal("--config", config, "once", "--since", "2000-01-01", "--quiet")
    assert quiet[0] == 0 and "backfill: " not in quiet[1]
    piped = run_fd_sync("--config", config, "once", "--since", "2000-01-01")
    assert piped.code == 0 and "backfill: " not in piped.stderr

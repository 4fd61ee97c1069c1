"""What a command imports before it does anything (issue 24): ``fd-sync --help``, ``status``
and an empty ``once`` start in about the time of a bare ``import requests``, because heavy
modules are imported where they are used. The command runs in a fresh interpreter that
then lists the modules it loaded (``sys.modules``; an import fd-sync blocked on purpose,
rich under structlog, is not loaded); the timing itself is ``make bench``'s."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.processes import child_env

pytestmark = pytest.mark.system

NEVER_FOR_HELP = {"sqlite_utils", "rich", "psycopg", "apscheduler", "structlog", "requests"}
NEVER_ON_SQLITE = {"rich", "psycopg", "apscheduler", "prometheus_client"}


PROBE = """
import json, runpy, sys
sys.argv = ["fd-sync", *json.loads(sys.argv[1])]
try:
    runpy.run_module("fd_sync", run_name="__main__")
except SystemExit:
    pass
loaded = sorted({name.split(".")[0] for name, module in sys.modules.items() if module})
print("LOADED " + json.dumps(loaded))
"""


def imported(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("LOADED ")]
    return set(json.loads(line[len("LOADED ") :]))


def test_help_imports_no_heavy_module():
    assert imported("--help") & NEVER_FOR_HELP == set()
    assert "click" in imported("--help")  # the probe sees what the command loaded
    assert imported("once", "--help") & (NEVER_FOR_HELP - {"structlog"}) == set()


def test_status_and_an_empty_once_import_only_what_they_use(write_config, run_fd_sync):
    config = str(write_config())
    assert run_fd_sync("--config", config, "once").code == 0  # the baseline
    assert (
        imported("--config", config, "status")
        & (NEVER_ON_SQLITE | {"requests", "urllib3", "sqlite_utils"})
        == set()
    )
    # sqlite-utils only when a migration is pending: never for an up-to-date ledger.
    assert imported("--config", config, "once") & (NEVER_ON_SQLITE | {"sqlite_utils"}) == set()

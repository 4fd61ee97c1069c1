"""The command line as a process: the version, and usage errors exit 64 (main's mapping)."""

from __future__ import annotations


def test_version(run_fd_sync):
    from fd_sync import __version__

    result = run_fd_sync("--version")
    assert result.code == 0 and __version__ in result.stdout


def test_usage_errors_exit_64(run_fd_sync):
    assert run_fd_sync("no-such-command").code == 64
    assert run_fd_sync("once", "--no-such-option").code == 64


def test_the_log_environment_variables_are_checked_and_named(
    servicenow, flashduty, write_config, run_fd_sync
):
    """FD_SYNC_LOG_FORMAT=console was silently ignored and FD_SYNC_LOG_LEVEL=verbose was
    refused without naming the variable (issue 23, item 13)."""
    config = str(write_config())
    console = run_fd_sync("--config", config, "once", env={"FD_SYNC_LOG_FORMAT": "console"})
    assert console.code == 0, console.output
    assert console.stderr.strip() and not console.stderr.lstrip().startswith("{")  # not JSON
    wrong = run_fd_sync("--config", config, "once", env={"FD_SYNC_LOG_FORMAT": "xml"})
    assert wrong.code == 78 and "FD_SYNC_LOG_FORMAT" in wrong.stderr and "console" in wrong.stderr
    assert "Traceback" not in wrong.output
    level = run_fd_sync("--config", config, "once", env={"FD_SYNC_LOG_LEVEL": "verbose"})
    assert level.code == 64 and "FD_SYNC_LOG_LEVEL" in level.stderr

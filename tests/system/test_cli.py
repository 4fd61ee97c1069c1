"""The command line as a process: the version, and usage errors exit 64 (main's mapping)."""

from __future__ import annotations


def test_version(run_fd_sync):
    from fd_sync import __version__

    result = run_fd_sync("--version")
    assert result.code == 0 and __version__ in result.stdout


def test_usage_errors_exit_64(run_fd_sync):
    assert run_fd_sync("no-such-command").code == 64
    assert run_fd_sync("once", "--no-such-option").code == 64

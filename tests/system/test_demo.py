"""`make demo` is the first thing a newcomer runs: it must work with no network and no setup."""

from __future__ import annotations


def test_demo_shows_incidents_flowing(run_fd_sync):
    result = run_fd_sync("demo")
    assert result.code == 0, result.output
    out = result.stdout
    assert "-> create" in out and "-> update" in out and "-> resolve" in out
    assert "the two agree" in out
    assert "Traceback" not in result.output

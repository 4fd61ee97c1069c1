"""Telling a live daemon from a pid that died or was reused (what `status` relies on)."""

from __future__ import annotations

import os

from fd_sync.store.lock import process_identity, still_running


def test_this_process_is_running():
    assert still_running(process_identity())


def test_a_reused_pid_or_a_reboot_is_not_the_recorded_process():
    me = process_identity()
    assert not still_running({**me, "start_ticks": (me["start_ticks"] or 0) + 1})
    assert not still_running({**me, "boot_id": "another-boot"})


def test_a_gone_or_missing_pid_is_not_running():
    assert not still_running({"pid": None})
    assert not still_running({"pid": 2**22 + 12345, "boot_id": None, "start_ticks": None})


def test_without_proc_the_pid_alone_decides():
    assert still_running({"pid": os.getpid(), "boot_id": None, "start_ticks": None})

"""The test levels hold: a unit test cannot reach the network or start a process."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


def test_a_unit_test_cannot_open_a_connection():
    with pytest.raises(AssertionError, match="tests/integration"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_a_unit_test_cannot_start_a_process():
    with pytest.raises(AssertionError, match="tests/system"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)

"""Installing fd-sync: a PEP 517 build through the backend pyproject.toml declares.

Debian 12's pip warns that a project without pyproject.toml takes a deprecated legacy
install path; the pip in this venv no longer shows that path, so the first test checks the
declaration itself and the second that the wheel built through it is complete.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_declares_the_setuptools_backend_and_leaves_metadata_to_setup_cfg():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert any(r.startswith("setuptools") for r in pyproject["build-system"]["requires"])
    assert "project" not in pyproject  # name, version, dependencies: setup.cfg, once


def test_the_wheel_carries_the_package_its_types_and_the_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp_path, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("fd_sync-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fd_sync/py.typed" in names and "fd_sync/store/ledger.py" in names
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    assert "fd-sync = fd_sync.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

"""The benchmark's baselines fetch exactly what fd-sync fetches, or the ratios mean nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fd_sync.core.incident import FIELDS

CLIENTS = Path(__file__).resolve().parents[2] / "bench" / "clients"


def _literal(path: Path, name: str) -> object:
    """A module-level constant, read without importing the client (PySNC is bench-only)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path.name} has no {name}")


@pytest.mark.parametrize(
    ("client", "as_list"),
    [("raw_fetch.py", lambda v: v.split(",")), ("pysnc_fetch.py", list)],
)
def test_baseline_fetches_the_same_fields_as_fd_sync(client, as_list):
    fields = as_list(_literal(CLIENTS / client, "FIELDS"))
    assert sorted(fields) == sorted(FIELDS)


def test_every_stage_the_bench_meters_exists():
    """bench.stages wraps functions by name: a rename must fail here, not in make bench."""
    import importlib

    from bench.stages import STAGES

    for _stage, module_name, attribute in STAGES:
        owner = importlib.import_module(module_name)
        for part in attribute.split("."):
            owner = getattr(owner, part)
        assert callable(owner), attribute

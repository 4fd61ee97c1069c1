"""The short chaos soak (about a minute); `make soak` runs the long one.

On PostgreSQL two daemons share the ledger and the kills go to the leader: the same
figures must hold across failovers."""

from __future__ import annotations

import random

import pytest

from tests import postgres
from tests.chaos import Soak


@pytest.mark.parametrize(("ledger", "seconds"), [("sqlite", 45), ("postgres", 30)])
def test_short_chaos_soak_loses_nothing(tmp_path, ledger, seconds):
    if ledger == "postgres" and postgres.bin_dir() is None:
        postgres.shared_cluster()  # skips, or fails in CI, with the reason
    seed = random.SystemRandom().randrange(10**6)
    soak = Soak(tmp_path, seed=seed, ledger=ledger, log=lambda _: None)
    try:
        figures = soak.run(seconds)
        details = soak.explain()  # before close: it reads the ledger
    finally:
        soak.close()
    report = (
        f"seed {seed} (rerun: python -m tests.chaos --minutes {seconds / 60:g} --seed {seed}"
        f" --ledger {ledger})\n"
    )
    report += figures.table() + "\n" + details
    assert figures.kills >= 1 and sum(figures.faults.values()) >= 10, report
    if ledger == "postgres":
        assert figures.failovers == figures.kills, report  # every leader killed was replaced
    assert figures.losses == 0, report
    assert figures.broken_histories == 0, report
    assert figures.pending == 0 and figures.dead == 0, report
    assert figures.duplicates <= figures.duplicates_explainable, report

"""The short chaos soak (about a minute); `make soak` runs the long one."""

from __future__ import annotations

import random

from tests.chaos import Soak


def test_short_chaos_soak_loses_nothing(tmp_path):
    seed = random.SystemRandom().randrange(10**6)
    soak = Soak(tmp_path, seed=seed, log=lambda _: None)
    try:
        figures = soak.run(45)
    finally:
        soak.close()
    report = f"seed {seed} (rerun: python -m tests.chaos --minutes 0.75 --seed {seed})\n"
    report += figures.table() + "\n" + soak.explain()
    assert figures.kills >= 1 and sum(figures.faults.values()) >= 10, report
    assert figures.losses == 0, report
    assert figures.broken_histories == 0, report
    assert figures.pending == 0 and figures.dead == 0, report
    assert figures.duplicates <= figures.duplicates_explainable, report

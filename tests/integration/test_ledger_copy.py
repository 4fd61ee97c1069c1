"""`store.copy`: more rows than one batch, in every table, keyed or numbered, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from fd_sync.core.decide import reconcile
from fd_sync.store import backends
from fd_sync.store.copy import BATCH, copy_ledger, counts
from fd_sync.store.ledger import Ledger
from tests import postgres
from tests.integration.test_ledger import incident

pytestmark = pytest.mark.backends("sqlite", "postgres")  # every test on both engines


def test_a_copy_pages_every_table_by_its_key(database, tmp_path):
    n = BATCH * 2 + 500  # incidents, links and state are keyed by text, not numbered
    with Ledger(database) as source:
        decisions = reconcile([incident(i) for i in range(1, n + 1)], {})
        source.record_page(decisions, extras={}, quarantined=(), watermark="w", run_id="r")
        with source.transaction():
            for i in range(n):
                source.state.set(f"key-{i:05d}", "v")
        before = counts(source.db)
        ids = [e.id for e in source.outbox.items(limit=n)]
        if isinstance(database, Path):  # the other engine is the target
            cluster = postgres.shared_cluster()
            target_at = cluster.ledger(cluster.new_database())
        else:
            target_at = tmp_path / "copy" / "fd-sync.db"
        target = backends.connect(target_at, migrate=False)
        try:
            with target.run_lock(wait_seconds=0):
                target.migrate()
                copied = copy_ledger(source.db, target)
        finally:
            target.close()
    assert before["incidents"] == n and before["state"] >= n
    assert copied.rows == before
    with Ledger(target_at, readonly=True) as moved:
        assert [e.id for e in moved.outbox.items(limit=n)] == ids
        assert len(moved.entries([incident(i).sys_id for i in range(1, n + 1)])) == n

"""Where a test's ledger lives: SQLite files and throwaway PostgreSQL databases."""

from __future__ import annotations

from pathlib import Path

from fd_sync.core.location import LedgerLocation
from tests import postgres

BACKENDS = ("sqlite", "postgres")  # what @pytest.mark.backends may name


def machine_ledger(backend: str, folder: Path) -> LedgerLocation:
    """A new, empty ledger for one hypothesis example (no fixtures there)."""
    if backend == "postgres":
        return postgres.fresh_schema(postgres.shared_cluster())
    return folder / "fd-sync.db"

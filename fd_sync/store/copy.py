"""Moving a ledger between engines (``fd-sync ledger copy``): every row of every table,
ids kept, into an empty ledger of the same schema, then counted on both sides.

Ids are kept because operators name events by them (``fd-sync outbox retry 12``) and
the outbox's order is its id order. Nothing is half-copied: the target's rows go in
one transaction, and a count that differs afterwards is reported, not ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from fd_sync.errors import StorageUnusable, UsageRefused
from fd_sync.store.db import Database
from fd_sync.store.migrations import TABLES

BATCH = 1000


@dataclass(frozen=True)
class Copied:
    rows: dict[str, int]  # table -> rows copied (and counted on both sides)

    def line(self) -> str:
        return ", ".join(f"{n} {table}" for table, n in self.rows.items())


def counts(db: Database) -> dict[str, int]:
    return {table: int(db.scalar(f"SELECT COUNT(*) FROM {table}")) for table in TABLES}


def copy_ledger(source: Database, target: Database) -> Copied:
    """Copy ``source`` (held under its run lock by the caller) into the empty ``target``."""
    if source.applied_migrations() != target.applied_migrations():
        raise StorageUnusable(
            f"{target.where}: its schema differs from {source.where}'s; "
            "copy with the same fd-sync version on both"
        )
    already = {table: n for table, n in counts(target).items() if n}
    if already:
        held = ", ".join(f"{n} {table}" for table, n in already.items())
        raise UsageRefused(
            f"{target.where}: not empty ({held}); ledger copy only fills an empty ledger, "
            "so nothing is mixed or overwritten: point --to at a new database or file"
        )
    with target.transaction("copy the ledger"):
        for table, order in TABLES.items():
            columns = sorted(source.table_columns(table))
            names = ", ".join(columns)
            insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
            last: object = None
            while True:
                where = f"WHERE {order} > ? " if last is not None else ""
                batch = source.rows(
                    f"SELECT {names} FROM {table} {where}ORDER BY {order} LIMIT {BATCH}",
                    [last] if last is not None else [],
                    "read the ledger to copy",
                )
                if not batch:
                    break
                target.executemany(insert, batch, "copy the ledger")
                last = batch[-1][columns.index(order)]
            target.after_copy(table)
    before, after = counts(source), counts(target)
    if before != after:
        differ = ", ".join(
            f"{t}: {before[t]} -> {after[t]}" for t in TABLES if before[t] != after[t]
        )
        raise StorageUnusable(f"{target.where}: the copy's counts differ ({differ})")
    return Copied(after)

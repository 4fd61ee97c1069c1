"""The SQLite ledger: incidents as last acted on, the outbox, the watermark, run history.

Concurrency contract: one process changes incidents and the outbox at a time.
Callers take the run lock (:mod:`fd_sync.store.lock`) before doing so; readers such
as ``fd-sync status`` may open the ledger at any moment (WAL mode lets them
read while a run writes), and small state writes (the daemon's status) rely on
SQLite's own locking. A :class:`Ledger` object belongs to the thread that
opened it (a sqlite3 rule).

Durability contract: a page's incident rows, its outbox rows and the watermark
advance are written in one transaction (:meth:`Ledger.transaction`), so a crash
at any point leaves the ledger as it was after the last whole page. An event
is marked as attempted *before* it is sent and delivered *after* Flashduty
acknowledged it: a crash in between re-sends that one event, never loses it.

Every SQLite failure leaves through :class:`StorageError` with the file name
and the fix: a full disk or a lock is temporary (75), a corrupt file or a
schema from a newer fd-sync needs the operator (78). The ledger is never reset
silently.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

from fd_sync.core.decide import Decision, Kind, LedgerEntry
from fd_sync.core.incident import Incident
from fd_sync.core.payloads import NO_EXTRAS, Extras
from fd_sync.errors import EX_CONFIG, EX_TEMPFAIL, StorageError

PENDING, DELIVERED, DEAD, CANCELLED = "pending", "delivered", "dead", "cancelled"
DROPPED = "dropped"  # an operator gave up on it (fd-sync outbox drop)
RETENTION = timedelta(days=30)  # delivered and cancelled events; dead ones are kept
MEMORY = ":memory:"
_CHUNK = 500  # sys_ids per IN (...) query, far below SQLite's variable limit
_SNAPSHOT_JSON = json.JSONEncoder(ensure_ascii=False)  # built once, not per json.dumps call

migrations = Migrations("fd-sync")


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE incidents (
            sys_id TEXT PRIMARY KEY,
            number TEXT NOT NULL,
            updated_on TEXT NOT NULL,
            mod_count INTEGER NOT NULL,
            state TEXT NOT NULL,
            alert_open INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            changed_at TEXT NOT NULL
        );
        CREATE INDEX incidents_open ON incidents (alert_open);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sys_id TEXT NOT NULL,
            number TEXT NOT NULL,
            kind TEXT NOT NULL,
            destination TEXT NOT NULL,
            event TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            run_id TEXT,
            created_at TEXT NOT NULL,
            last_attempt_at TEXT,
            finished_at TEXT,
            http_status INTEGER,
            error_code TEXT,
            error_message TEXT,
            request_id TEXT
        );
        CREATE INDEX outbox_status ON outbox (status, id);
        CREATE INDEX outbox_incident ON outbox (sys_id, status);
        CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            command TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT,
            exit_code INTEGER,
            message TEXT,
            stats TEXT
        );
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sys_id TEXT,
            reason TEXT NOT NULL,
            sample TEXT NOT NULL,
            seen_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m002_routing(db: Database) -> None:
    """Where each open alert lives (routes), and whether a dispatch pinned it there."""
    for statement in (
        "ALTER TABLE incidents ADD COLUMN destination TEXT",
        "ALTER TABLE incidents ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE incidents ADD COLUMN pin_extras TEXT",
        # Before routing every alert lived at the [flashduty] push_url.
        "UPDATE incidents SET destination = 'default' WHERE alert_open = 1",
    ):
        db.execute(statement)


def known_migrations() -> list[str]:
    return [m.name for m in migrations._migrations]


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    sys_id: str
    number: str
    kind: Kind
    destination: str
    incident: Incident
    attempts: int
    status: str = PENDING
    created_at: str = ""
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    extras: Extras = field(default_factory=Extras)  # the route's or dispatch's, as queued


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class Ledger:
    def __init__(
        self, path: Path, *, readonly: bool = False, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.readonly = readonly
        with self._errors("open"):
            self.db = self._connect()
            if not readonly:
                self._prepare()
            self._check_schema()

    # --- opening and errors ----------------------------------------------------------

    @classmethod
    def scratch(cls, *, clock: Callable[[], datetime] = utc_now) -> Ledger:
        """An empty in-memory ledger: what a dry run uses when no ledger file exists yet."""
        return cls(Path(MEMORY), clock=clock)

    @property
    def in_memory(self) -> bool:
        return str(self.path) == MEMORY

    def _connect(self) -> Database:
        if self.in_memory:
            return Database(memory=True, execute_plugins=False)
        if self.readonly:
            if not self.path.exists():
                raise StorageError(
                    f"{self.path}: no ledger yet (fd-sync once creates it)", exit_code=EX_TEMPFAIL
                )
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"{self.path.parent}: cannot create the ledger folder ({exc.strerror}); "
                    "create it for the fd-sync user or set [sync] database",
                    exit_code=EX_CONFIG,
                ) from None
            conn = sqlite3.connect(self.path, timeout=5)
        return Database(conn, execute_plugins=False)

    def _prepare(self) -> None:
        if self.in_memory:
            migrations.apply(self.db)
            return
        with self.db.ensure_autocommit_on():
            mode = self.db.execute("PRAGMA journal_mode=wal").fetchone()[0]
            if mode != "wal":
                raise StorageError(
                    f"{self.path}: cannot switch to WAL journaling (got {mode}); "
                    "put the ledger on a local file system",
                    exit_code=EX_CONFIG,
                )
            # NORMAL is durable against process crashes in WAL mode; only a power
            # loss can drop the last commits, which the next scan re-decides.
            self.db.execute("PRAGMA synchronous=NORMAL")
        self._refuse_newer_schema()
        migrations.apply(self.db)

    def _refuse_newer_schema(self) -> None:
        applied = {m.name for m in migrations.applied(self.db)}
        unknown = applied - set(known_migrations())
        if unknown:
            raise StorageError(
                f"{self.path}: written by a newer fd-sync (schema {', '.join(sorted(unknown))}); "
                "upgrade fd-sync, or point [sync] database at another file",
                exit_code=EX_CONFIG,
            )

    def _check_schema(self) -> None:
        if self.readonly:
            self._refuse_newer_schema()
            if not self.db["outbox"].exists():
                raise StorageError(
                    f"{self.path}: not an fd-sync ledger (no outbox table); check [sync] database",
                    exit_code=EX_CONFIG,
                )

    @property
    def _routed(self) -> bool:
        """Whether m002 is applied: a read-only open of an older ledger does not migrate it."""
        return "destination" in self.db["incidents"].columns_dict

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Translate SQLite's exceptions into one-line, actionable StorageErrors."""
        try:
            yield
        except StorageError:
            raise
        except sqlite3.DatabaseError as exc:
            raise self._storage_error(exc, doing) from None
        except PermissionError as exc:
            raise StorageError(
                f"{self.path}: {exc.strerror} while trying to {doing}; "
                "the fd-sync user needs write access to the file and its folder",
                exit_code=EX_CONFIG,
            ) from None

    def _storage_error(self, exc: sqlite3.DatabaseError, doing: str) -> StorageError:
        text = str(exc)
        lowered = text.lower()
        if "disk is full" in lowered or "database or disk is full" in lowered:
            return StorageError(
                f"{self.path}: disk full while trying to {doing}; free space on its file system "
                "(nothing was lost: the last page is rolled back and will be re-read)",
                exit_code=EX_TEMPFAIL,
            )
        if "locked" in lowered or "busy" in lowered:
            return StorageError(
                f"{self.path}: database is locked by another process while trying to {doing}; "
                "retry when it is done",
                exit_code=EX_TEMPFAIL,
            )
        if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
            return StorageError(
                f"{self.path}: cannot write ({text}); the fd-sync user needs write access "
                "to the file and its folder",
                exit_code=EX_CONFIG,
            )
        if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
            return StorageError(
                f"{self.path}: not a usable fd-sync ledger ({text}); move it aside and "
                "restore a backup, or start a new ledger with fd-sync once --since",
                exit_code=EX_CONFIG,
            )
        if isinstance(exc, sqlite3.OperationalError) and "i/o" in lowered:
            return StorageError(
                f"{self.path}: I/O error while trying to {doing} ({text}); check the disk",
                exit_code=EX_TEMPFAIL,
            )
        return StorageError(
            f"{self.path}: SQLite error while trying to {doing}: {text}", exit_code=EX_TEMPFAIL
        )

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self, doing: str = "write the ledger") -> Iterator[None]:
        """All or nothing: a page, an outbox transition, a run record."""
        with self._errors(doing), self.db.atomic():
            yield

    # --- state ------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        with self._errors("read the ledger state"):
            row = self.db.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str | None) -> None:
        with self._errors("write the ledger state"):
            if value is None:
                self.db.execute("DELETE FROM state WHERE key = ?", [key])
            else:
                self.db.execute(
                    "INSERT INTO state (key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [key, value],
                )

    # --- incidents --------------------------------------------------------------------

    def entries(self, sys_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        """Ledger rows for these incidents, with whether their open alert may be at Flashduty."""
        ids = list(dict.fromkeys(sys_ids))
        rows: dict[str, LedgerEntry] = {}
        unsent: set[str] = set()
        with self._errors("read the ledger"):
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                routes = "destination, pinned" if self._routed else "NULL, 0"
                for row in self.db.execute(
                    "SELECT sys_id, updated_on, mod_count, alert_open, fingerprint,"
                    f" {routes} FROM incidents WHERE sys_id IN ({marks})",
                    chunk,
                ):
                    sys_id, updated_on, mod_count, alert_open, fingerprint, where, pinned = row
                    rows[sys_id] = LedgerEntry(
                        sys_id,
                        updated_on,
                        mod_count,
                        bool(alert_open),
                        fingerprint,
                        destination=where,
                        pinned=bool(pinned),
                    )
                # Events of one incident leave in order, so an untried create means
                # nothing of the current alert has reached Flashduty yet.
                unsent.update(
                    r[0]
                    for r in self.db.execute(
                        "SELECT DISTINCT sys_id FROM outbox WHERE status = 'pending' "
                        f"AND kind = 'create' AND attempts = 0 AND sys_id IN ({marks})",
                        chunk,
                    )
                )
        for sys_id in unsent & rows.keys():
            rows[sys_id] = replace(rows[sys_id], alert_reached=False)
        return rows

    def open_alerts(self) -> dict[str, str]:
        """sys_id -> number of every incident whose alert is open in Flashduty."""
        with self._errors("read the ledger"):
            return dict(
                self.db.execute("SELECT sys_id, number FROM incidents WHERE alert_open = 1")
            )

    def snapshots(self, sys_ids: Iterable[str]) -> dict[str, Incident]:
        """The last version of each incident the ledger acted on."""
        ids = list(dict.fromkeys(sys_ids))
        out: dict[str, Incident] = {}
        with self._errors("read the ledger"):
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for sys_id, snapshot in self.db.execute(
                    f"SELECT sys_id, snapshot FROM incidents WHERE sys_id IN ({marks})", chunk
                ):
                    out[sys_id] = Incident.from_dict(json.loads(snapshot))
        return out

    def pins(self, sys_ids: Iterable[str]) -> dict[str, Extras]:
        """What the dispatch of each pinned incident chose; its updates carry the same."""
        ids = list(dict.fromkeys(sys_ids))
        out: dict[str, Extras] = {}
        if not self._routed:
            return out  # an older ledger, opened read-only: nothing was ever pinned
        with self._errors("read the ledger"):
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for sys_id, text in self.db.execute(
                    "SELECT sys_id, pin_extras FROM incidents WHERE pinned = 1 "
                    f"AND sys_id IN ({marks})",
                    chunk,
                ):
                    out[sys_id] = Extras.from_dict(json.loads(text) if text else None)
        return out

    def record(
        self,
        decisions: Sequence[Decision],
        *,
        run_id: str,
        extras: Mapping[str, Extras] | None = None,
        pins: Mapping[str, Extras] | None = None,
    ) -> dict[str, int]:
        """Write decisions: ledger rows, queued events, cancellations. Call inside a transaction.

        ``extras`` (by sys_id) go with each incident's create and update events;
        ``pins`` are the choices of a dispatch, kept while the incident stays pinned.
        """
        now = _iso(self.clock())
        counts = {"create": 0, "update": 0, "resolve": 0, "cancelled": 0}
        incident_rows = []
        events = []
        cancels = []
        for d in decisions:
            inc = d.incident
            snapshot = _SNAPSHOT_JSON.encode(inc.to_dict())  # the row's, and a resolve's
            pin = (pins or {}).get(inc.sys_id)
            incident_rows.append(
                (
                    inc.sys_id,
                    inc.number,
                    d.entry.updated_on,
                    d.entry.mod_count,
                    inc.state,
                    int(d.entry.alert_open),
                    d.entry.fingerprint,
                    snapshot,
                    now,
                    d.entry.destination,
                    int(d.entry.pinned),
                    json.dumps(pin.to_dict(), ensure_ascii=False) if pin else None,
                )
            )
            if d.cancel_pending:
                cancels.append((now, inc.sys_id, inc.sys_id))
            added = (extras or {}).get(inc.sys_id, NO_EXTRAS)
            for event in d.events:
                counts[event.kind.value] += 1
                payload = snapshot
                if event.kind is not Kind.RESOLVE:
                    body = inc.to_dict()
                    body["extras"] = added.to_dict()
                    payload = _SNAPSHOT_JSON.encode(body)
                events.append(
                    (
                        inc.sys_id,
                        inc.number,
                        event.kind.value,
                        event.destination,
                        payload,
                        PENDING,
                        run_id,
                        now,
                    )
                )
        with self._errors("write the ledger"):
            self.db.conn.executemany(
                "INSERT INTO incidents (sys_id, number, updated_on, mod_count, state, alert_open,"
                " fingerprint, snapshot, changed_at, destination, pinned, pin_extras)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(sys_id) DO UPDATE SET number=excluded.number,"
                " updated_on=excluded.updated_on, mod_count=excluded.mod_count,"
                " state=excluded.state, alert_open=excluded.alert_open,"
                " fingerprint=excluded.fingerprint, snapshot=excluded.snapshot,"
                " changed_at=excluded.changed_at, destination=excluded.destination,"
                " pinned=excluded.pinned, pin_extras=CASE WHEN excluded.pinned = 0 THEN NULL"
                " ELSE COALESCE(excluded.pin_extras, incidents.pin_extras) END",
                incident_rows,
            )
            for at, sys_id, same in cancels:
                # Only the open alert's events, from its untried create on: the
                # resolve of an earlier alert (maybe elsewhere) must still leave.
                cursor = self.db.conn.execute(
                    "UPDATE outbox SET status = 'cancelled', finished_at = ? "
                    "WHERE sys_id = ? AND status = 'pending' AND attempts = 0 AND id >= "
                    "(SELECT MIN(id) FROM outbox WHERE sys_id = ? AND status = 'pending' "
                    "AND kind = 'create' AND attempts = 0)",
                    [at, sys_id, same],
                )
                counts["cancelled"] += cursor.rowcount
            self.db.conn.executemany(
                "INSERT INTO outbox (sys_id, number, kind, destination, event, status, run_id,"
                " created_at) VALUES (?,?,?,?,?,?,?,?)",
                events,
            )
        return counts

    def quarantine(self, sys_id: str | None, reason: str, sample: str) -> None:
        """Keep a bad row for the operator; the same row re-read later is kept once."""
        with self._errors("write the quarantine"):
            self.db.conn.execute(
                "INSERT INTO quarantine (sys_id, reason, sample, seen_at) SELECT ?, ?, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM quarantine WHERE sample = ?)",
                [sys_id, reason[:500], sample[:2000], _iso(self.clock()), sample[:2000]],
            )

    # --- outbox -----------------------------------------------------------------------

    def pending(
        self, *, after_id: int = 0, limit: int = 500, sys_id: str | None = None
    ) -> list[OutboxEvent]:
        """Pending events in queue order; only one incident's with ``sys_id``."""
        only, params = ("AND sys_id = ? ", [sys_id]) if sys_id else ("", [])
        with self._errors("read the outbox"):
            cursor = self.db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM outbox WHERE status = 'pending' AND id > ? "
                f"{only}ORDER BY id LIMIT ?",
                [after_id, *params, limit],
            )
            return [_event(row) for row in cursor]

    def events(
        self, *, status: str | None = None, limit: int = 100, sys_id: str | None = None
    ) -> list[OutboxEvent]:
        """Events of any status, newest first."""
        conditions = [(c, v) for c, v in (("status = ?", status), ("sys_id = ?", sys_id)) if v]
        where = ("WHERE " + " AND ".join(c for c, _ in conditions)) if conditions else ""
        params = [v for _, v in conditions]
        with self._errors("read the outbox"):
            cursor = self.db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM outbox {where} ORDER BY id DESC LIMIT ?",
                [*params, limit],
            )
            return [_event(row) for row in cursor]

    def dead_incidents(self) -> set[str]:
        """Incidents with a dead event: their later events wait until an operator acts."""
        with self._errors("read the outbox"):
            return {
                r[0]
                for r in self.db.execute("SELECT DISTINCT sys_id FROM outbox WHERE status='dead'")
            }

    def mark_attempt(self, event_id: int) -> None:
        with self.transaction("record a delivery attempt"):
            self.db.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ? WHERE id = ?",
                [_iso(self.clock()), event_id],
            )

    def mark_delivered(self, event_id: int, *, http_status: int, request_id: str | None) -> None:
        with self.transaction("record a delivery"):
            self.db.conn.execute(
                "UPDATE outbox SET status = 'delivered', finished_at = ?, http_status = ?,"
                " request_id = ?, error_code = NULL, error_message = NULL WHERE id = ?",
                [_iso(self.clock()), http_status, request_id, event_id],
            )

    def mark_failed(
        self,
        event_id: int,
        *,
        dead: bool,
        http_status: int | None,
        error_code: str | None,
        error_message: str,
        request_id: str | None,
    ) -> None:
        """Record why an attempt failed; a dead event stays until an operator acts."""
        with self.transaction("record a delivery failure"):
            self.db.conn.execute(
                "UPDATE outbox SET status = ?, finished_at = ?, http_status = ?, error_code = ?,"
                " error_message = ?, request_id = ? WHERE id = ?",
                [
                    DEAD if dead else PENDING,
                    _iso(self.clock()) if dead else None,
                    http_status,
                    error_code,
                    error_message[:1000],
                    request_id,
                    event_id,
                ],
            )

    def purge_finished(self) -> int:
        """Forget delivered, cancelled and dropped events after RETENTION; dead ones stay."""
        cutoff = _iso(self.clock() - RETENTION)
        with self.transaction("purge old events"):
            cursor = self.db.conn.execute(
                "DELETE FROM outbox WHERE status IN ('delivered', 'cancelled', 'dropped') "
                "AND finished_at < ?",
                [cutoff],
            )
        return cursor.rowcount

    # --- operator actions (fd-sync outbox ...) -------------------------------------------

    def event(self, event_id: int) -> OutboxEvent | None:
        with self._errors("read the outbox"):
            row = self.db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM outbox WHERE id = ?", [event_id]
            ).fetchone()
        return _event(row) if row else None

    def retry_dead(self, event_id: int | None = None) -> int:
        """Dead events back to pending, keeping their error for the record until resent."""
        where, params = ("AND id = ?", [event_id]) if event_id is not None else ("", [])
        with self.transaction("requeue dead events"):
            cursor = self.db.conn.execute(
                f"UPDATE outbox SET status = 'pending', finished_at = NULL "
                f"WHERE status = 'dead' {where}",
                params,
            )
        return cursor.rowcount

    def drop(self, event: OutboxEvent) -> int:
        """Give up on an event. Dropping a create gives up on its whole alert: its queued
        events go too, and the incident counts as having no alert, so its next change in
        ServiceNow opens a new one. Returns how many events were dropped."""
        now = _iso(self.clock())
        with self.transaction("drop an event"):
            if event.kind is Kind.CREATE:
                cursor = self.db.conn.execute(
                    "UPDATE outbox SET status = 'dropped', finished_at = ? WHERE sys_id = ? "
                    "AND id >= ? AND status IN ('pending', 'dead')",
                    [now, event.sys_id, event.id],
                )
                self.db.conn.execute(
                    "UPDATE incidents SET alert_open = 0, destination = NULL, pinned = 0,"
                    " pin_extras = NULL WHERE sys_id = ?",
                    [event.sys_id],
                )
            else:
                cursor = self.db.conn.execute(
                    "UPDATE outbox SET status = 'dropped', finished_at = ? WHERE id = ? "
                    "AND status IN ('pending', 'dead')",
                    [now, event.id],
                )
        return cursor.rowcount

    # --- runs and summary -------------------------------------------------------------

    def start_run(self, run_id: str, command: str) -> int:
        with self.transaction("record the run"):
            cursor = self.db.conn.execute(
                "INSERT INTO runs (run_id, command, started_at) VALUES (?, ?, ?)",
                [run_id, command, _iso(self.clock())],
            )
        return int(cursor.lastrowid or 0)

    def finish_run(
        self, row_id: int, *, outcome: str, exit_code: int, message: str, stats: dict[str, Any]
    ) -> None:
        with self.transaction("record the run"):
            self.db.conn.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, exit_code = ?, message = ?,"
                " stats = ? WHERE id = ?",
                [_iso(self.clock()), outcome, exit_code, message[:1000], json.dumps(stats), row_id],
            )

    def summary(self) -> dict[str, Any]:
        with self._errors("read the ledger"):
            one = self.db.execute
            counts = dict(one("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
            blocked = one(
                "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND sys_id IN "
                "(SELECT sys_id FROM outbox WHERE status = 'dead')"
            ).fetchone()[0]
            last = one(
                "SELECT run_id, command, started_at, finished_at, outcome, exit_code, message "
                "FROM runs ORDER BY id DESC LIMIT 1"
            ).fetchone()
            last_ok = one(
                "SELECT finished_at FROM runs WHERE exit_code = 0 ORDER BY id DESC LIMIT 1"
            ).fetchone()
            dead_reasons = [
                {"http_status": status, "error_code": code, "destination": dest, "events": n}
                for status, code, dest, n in one(
                    "SELECT http_status, error_code, destination, COUNT(*) FROM outbox "
                    "WHERE status = 'dead' GROUP BY 1, 2, 3 ORDER BY 4 DESC"
                )
            ]
            return {
                "database": str(self.path),
                "watermark": self.get_state("watermark"),
                "incidents_tracked": one("SELECT COUNT(*) FROM incidents").fetchone()[0],
                "open_alerts": one(
                    "SELECT COUNT(*) FROM incidents WHERE alert_open = 1"
                ).fetchone()[0],
                "outbox": {
                    "pending": counts.get(PENDING, 0),
                    "blocked": blocked,
                    "dead": counts.get(DEAD, 0),
                    "delivered": counts.get(DELIVERED, 0),
                    "cancelled": counts.get(CANCELLED, 0),
                },
                "dead_reasons": dead_reasons,
                # Open alerts whose incident ServiceNow no longer returns (deletions.py).
                "missing_incidents": json.loads(self.get_state("missing_incidents") or "[]"),
                "quarantined": one("SELECT COUNT(*) FROM quarantine").fetchone()[0],
                "last_run": dict(
                    zip(
                        (
                            "run_id",
                            "command",
                            "started_at",
                            "finished_at",
                            "outcome",
                            "exit_code",
                            "message",
                        ),
                        last,
                        strict=True,
                    )
                )
                if last
                else None,
                "last_success_at": last_ok[0] if last_ok else None,
            }


_EVENT_COLUMNS = (
    "id, sys_id, number, kind, destination, event, attempts, status, created_at, http_status,"
    " error_code, error_message, request_id"
)


def _event(row: Sequence[Any]) -> OutboxEvent:
    (
        id_,
        sys_id,
        number,
        kind,
        destination,
        event,
        attempts,
        status,
        created_at,
        http_status,
        error_code,
        error_message,
        request_id,
    ) = row
    data = json.loads(event)
    return OutboxEvent(
        id=id_,
        sys_id=sys_id,
        number=number,
        kind=Kind(kind),
        destination=destination,
        incident=Incident.from_dict(data),
        attempts=attempts,
        status=status,
        created_at=created_at,
        http_status=http_status,
        error_code=error_code,
        error_message=error_message,
        request_id=request_id,
        extras=Extras.from_dict(data.get("extras")),
    )

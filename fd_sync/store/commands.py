"""Commands in work notes: each note acted on once, a :class:`DurableQueue`.

A note is queued in the Ledger step that advances the commands' watermark (nothing read is
lost; the journal's ``sys_id`` is unique, so a note read again by the look-back is not
queued twice). Acting marks it attempted first (:meth:`CommandSteps.attempt_command`); the
page it asks for goes through the outbox, and its answer through the write-back queue, in
the step that finishes it (:meth:`CommandSteps.answer_command`). A crash in between never
acts again: the command is answered that it was interrupted, and an event already queued
for the page is delivered by the outbox's own contract (at most once more after a kill).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from fd_sync.core.tickets import OwedWrite
from fd_sync.core.writeback import Intents
from fd_sync.store.db import Row
from fd_sync.store.queue import DELIVERED, PENDING, DurableQueue, QueueStatus
from fd_sync.store.state import COMMANDS_SEEN_AT, COMMANDS_WATERMARK, State
from fd_sync.store.tickets import FlashdutyWriteQueue
from fd_sync.store.times import iso
from fd_sync.store.writeback import NewWrite, WritebackQueue

ID_PREFIX = "c"  # `outbox list` shows commands as c12


@dataclass(frozen=True)
class CommandNote:
    """A work note that starts with /flashduty, as the journal has it."""

    journal_id: str
    sys_id: str  # the incident's
    number: str
    author: str  # sys_created_by: the user_name of whoever wrote it
    text: str
    verb: str  # what it asks (page, rules, status, help), or "" when it cannot be read


@dataclass(frozen=True)
class Command:
    id: int
    journal_id: str
    sys_id: str
    number: str
    author: str
    text: str
    verb: str
    status: QueueStatus
    attempts: int
    created_at: str
    http_status: int | None = None
    error_message: str | None = None
    finished_at: str | None = None
    answer: str | None = None

    @property
    def label(self) -> str:
        return f"{ID_PREFIX}{self.id}"


class CommandQueue(DurableQueue[Command]):
    table = "commands"
    label_prefix = ID_PREFIX
    direction = "servicenow"

    columns = (
        "id, journal_id, sys_id, number, author, text, verb, status, attempts, created_at,"
        " http_status, error_message, finished_at, answer"
    )

    def decode(self, row: Row) -> Command:
        id_, journal_id, sys_id, number, author, text, verb, status, attempts, created, *rest = row
        http_status, error_message, finished_at, answer = rest
        return Command(
            id_,
            journal_id,
            sys_id,
            number,
            author,
            text,
            verb,
            QueueStatus(status),
            attempts,
            created,
            http_status,
            error_message,
            finished_at,
            answer,
        )

    def queue(self, notes: Sequence[CommandNote], *, run_id: str) -> None:
        """Each note once: one read again (the look-back) is already here."""
        self.db.executemany(
            "INSERT INTO commands (journal_id, sys_id, number, author, text, verb, status,"
            " run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(journal_id) DO NOTHING",
            [
                (
                    n.journal_id,
                    n.sys_id,
                    n.number,
                    n.author,
                    n.text[:4000],
                    n.verb,
                    PENDING.value,
                    run_id,
                    iso(self.clock()),
                )
                for n in notes
            ],
        )


class CommandSteps:
    """The Ledger's steps for commands, mixed into it; each one transaction."""

    commands: CommandQueue
    writeback: WritebackQueue
    flashduty_writes: FlashdutyWriteQueue
    state: State
    clock: Callable[[], datetime]

    if TYPE_CHECKING:  # the Ledger's

        def transaction(self, doing: str = "") -> contextlib.AbstractContextManager[None]: ...

    def record_commands(
        self,
        notes: Sequence[CommandNote],
        *,
        watermark: str,
        run_id: str,
        owed: Sequence[OwedWrite] = (),
    ) -> None:
        """Notes read, with the watermark past them: a crash re-reads, never skips. ``owed``:
        the desk's notes as comments owed to Flashduty ([forward] work_notes), queued once."""
        with self.transaction("record commands"):
            if owed:
                self.flashduty_writes.queue(owed, run_id=run_id)
            if notes:
                self.commands.queue(notes, run_id=run_id)
                self.state.set(COMMANDS_SEEN_AT, iso(self.clock()))
            self.state.set(COMMANDS_WATERMARK, watermark)

    def attempt_command(self, command: Command) -> None:
        """Committed before acting: after a crash the command is answered, never redone."""
        with self.transaction("record a command attempt"):
            self.commands.mark_attempt([command.id])

    def answer_command(self, command: Command, answer: str, *, run_id: str) -> None:
        """The command is done; its answer is owed to the incident as a work note (the
        write-back queue writes it once, with its marker)."""
        with self.transaction("answer a command"):
            self.writeback.queue(
                NewWrite(command.sys_id, command.number, "", answer, Intents(), ("answer",)),
                run_id=run_id,
            )
            self.commands.db.execute(
                f"UPDATE commands SET status = '{DELIVERED}', finished_at = ?, answer = ?"
                " WHERE id = ?",
                [iso(self.clock()), answer[:4000], command.id],
            )

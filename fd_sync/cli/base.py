"""What every command shares: the group, its options, config loading, ledger access, output."""

from __future__ import annotations

import contextlib
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from fd_sync import __version__, logs
from fd_sync.redaction import redact
from fd_sync.store.lock import DEFAULT_WAIT_SECONDS

if TYPE_CHECKING:  # the CLI imports the library lazily: start-up time of every command
    from fd_sync.config import Config
    from fd_sync.store.ledger import Ledger

F = TypeVar("F", bound=Callable[..., Any])
Access = Literal["read", "preview", "write"]


@dataclass
class Options:
    config_path: str | None
    log_level: str
    lock_wait: float = DEFAULT_WAIT_SECONDS


def load_config(options: Options, *, secrets_required: bool = True) -> Config:
    from fd_sync import config as config_module

    cfg = config_module.load(options.config_path, secrets_required=secrets_required)
    for warning in cfg.warnings:  # (no logger when there is nothing to say: see logs)
        logs.get("config").warning("config_warning", path=str(cfg.path), warning=warning)
    return cfg


@contextlib.contextmanager
def ledger_access(cfg: Config, access: Access) -> Iterator[Ledger]:
    """The ledger as a command needs it: ``read`` (status: it must exist), ``preview``
    (dry runs: read-only, or empty before the first run) or ``write`` (under the run lock)."""
    from fd_sync.store.ledger import Ledger

    database = cfg.sync.database
    if access == "write":
        options = click.get_current_context().find_object(Options)
        wait = options.lock_wait if options else DEFAULT_WAIT_SECONDS
        with Ledger.for_writing(
            database, wait_seconds=wait, keepalive_seconds=cfg.sync.failover_seconds
        ) as ledger:
            yield ledger
    else:
        opened = (
            Ledger(database, readonly=True) if access == "read" else Ledger.for_reading(database)
        )
        with opened as ledger:
            yield ledger


def json_option(help: str) -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help)


def dry_run_option(help: str) -> Callable[[F], F]:
    return click.option("--dry-run", is_flag=True, help=help)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Configuration file [default: $FD_SYNC_CONFIG, else /etc/fd-sync/config.toml].",
)
@click.option(
    "--log-level",
    type=click.Choice(logs.LEVELS),
    default="info",
    envvar="FD_SYNC_LOG_LEVEL",
    show_envvar=True,
    show_default=True,
    help="Least severe log lines to print (on stderr).",
)
@click.option(
    "--lock-wait",
    type=click.FloatRange(0, 3600),
    default=DEFAULT_WAIT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="How long a command that writes the ledger waits for another fd-sync run to finish.",
)
@click.version_option(__version__, prog_name="fd-sync")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str, lock_wait: float) -> None:
    """Connect ServiceNow incidents and Flashduty, from outside the firewall.

    fd-sync reads changed incidents from the ServiceNow Table API, keeps a ledger
    (a SQLite file, or PostgreSQL shared by two hosts) of what it has sent, and
    pushes create, update and resolve events to Flashduty, so that Flashduty's open
    alerts mirror ServiceNow's open incidents; with [writeback], what responders do
    in Flashduty is written back to the incident. Everything is outbound: nothing
    is installed in ServiceNow.
    """
    logs.configure(log_level)
    # Every line of this process names it: the daemon by its own id (each cycle adds a
    # run_id), any other command by the run_id its work is recorded under.
    new_id = uuid.uuid4().hex[:12]
    logs.identify(
        **({"daemon_id": new_id} if ctx.invoked_subcommand == "run" else {"run_id": new_id})
    )
    ctx.obj = Options(config_path=config_path, log_level=log_level, lock_wait=lock_wait)


def echo(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(redact(line))


def stop_on_signals() -> threading.Event:
    """SIGTERM, SIGINT and SIGHUP (a closed terminal) ask the run to stop at the next safe
    point instead of dying: SIGHUP's default would kill it with 129 and no record."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second signal: stop now (the ledger is still safe)
        logs.get("cli").info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, handler)
    return stop


def print_error(exc: BaseException) -> None:
    click.echo(f"fd-sync: {redact(str(exc))}", err=True)

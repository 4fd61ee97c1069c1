"""``fd-sync check``: find the misconfiguration before it bites.

The troubleshooting section of the ServiceNow-side integration, as a command:
each layer is tested in order (DNS, TCP, TLS, HTTP, credentials, read access,
a one-row query, the clocks; then Flashduty's push endpoint) and reported as
one line with a hint for the operator. A failure at one layer skips the layers
above it, because their errors would only repeat it. Nothing here creates an
alert unless ``--send-test`` asks for one.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from fd_sync.config import Config
from fd_sync.errors import worst
from fd_sync.ops.check import (
    commands,
    flashduty,
    ledger,
    network,
    servicenow,
    tickets,
    writeback,
)
from fd_sync.ops.check.steps import Step, ok


class Checker:
    """Runs the checks in order; collaborators injectable for tests."""

    def __init__(self, config: Config, *, echo: Callable[[str], None] = print) -> None:
        self.config = config
        self.echo = echo
        self.steps: list[Step] = []

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        for line in step.lines():
            self.echo(line)
        return step

    @property
    def exit_code(self) -> int:
        """The failure that needs the most attention decides (configuration before
        credentials before a refusal before a temporary failure)."""
        return worst(s.exit_code for s in self.steps if s.level == "fail")

    # --- the sequence -------------------------------------------------------------------

    def run(self, *, send_test: bool = False) -> int:
        self.add(ok("config", "valid", str(self.config.path)))
        for warning in self.config.warnings:
            self.add(Step("config", "warning", "warn", warning))
        for label, origin in self.config.secret_sources:  # where, never what
            self.add(ok("config", "secret", f"{label} from {origin}"))
        ledger.check(self)
        if network.reach(self, "servicenow", self.config.servicenow.instance_url):
            servicenow.check(self)
            if self.config.commands.enabled:
                commands.check(self)
        reachable: dict[str, bool] = {}  # host -> network steps passed; probed once each
        for label, push_url, push_format in flashduty.push_endpoints(self):
            host = urllib.parse.urlsplit(push_url).netloc
            if host not in reachable:
                reachable[host] = network.reach(self, "flashduty", push_url)
            if not reachable[host]:
                continue
            client = flashduty.probe(self, label, push_url, push_format)
            if client is not None and send_test and label == "push_url":
                flashduty.send_test(self, client)
        if self.config.flashduty.app_key and network.reach(
            self, "openapi", self.config.flashduty.api_url
        ):
            flashduty.openapi(self)
            if self.config.writeback.enabled:
                writeback.check(self)
            if self.config.tickets.enabled:
                tickets.check(self)
        return self.exit_code


def run_check(config: Config, *, send_test: bool, echo: Callable[[str], None]) -> int:
    checker = Checker(config, echo=echo)
    code = checker.run(send_test=send_test)
    failed = sum(1 for s in checker.steps if s.level == "fail")
    echo("all checks passed" if not failed else f"{failed} check(s) failed")
    return code

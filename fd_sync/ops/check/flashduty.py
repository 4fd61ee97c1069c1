"""Flashduty: each push endpoint probed without creating an alert, the OpenAPI key,
and (``--send-test``) one real test alert, resolved at once."""

from __future__ import annotations

import dataclasses
import secrets
from typing import TYPE_CHECKING, Any

from fd_sync import wiring
from fd_sync.core.decide import Kind
from fd_sync.core.incident import Incident, IncidentState
from fd_sync.core.payloads import build
from fd_sync.core.routing import PushFormat
from fd_sync.errors import (
    EX_NOPERM,
    EX_PROTOCOL,
    AccessDenied,
    FatalAPIError,
    FdSyncError,
    RetriableAPIError,
)
from fd_sync.flashduty.answers import key_rejected
from fd_sync.flashduty.push import FlashdutyClient, describe
from fd_sync.ops.check.steps import Step, fail, ok

if TYPE_CHECKING:
    from fd_sync.ops.check import Checker


def push_endpoints(c: Checker) -> list[tuple[str, str, PushFormat]]:
    """(label, push URL, format) of [flashduty] push_url and of every route's own."""
    fd = c.config.flashduty
    endpoints = [("push_url", fd.push_url, fd.push_format)]
    endpoints += [
        (f"route {d.name.removeprefix('route:')}", d.push_url, d.push_format)
        for d in c.config.routing.destinations
    ]
    return endpoints


def _accepted(push_format: str) -> str:
    """What a 400 to the empty probe proves, per format (README: what check can tell)."""
    if push_format == "standard":
        # Flashduty names a wrong key in its 400; any other 400 is about the empty body.
        return "reachable, integration key accepted; the empty probe created no alert"
    return (
        "reachable, ServiceNow format; the empty probe created no alert, so the token "
        "itself is proven only by --send-test (a test alert, resolved at once)"
    )


def probe(c: Checker, label: str, push_url: str, push_format: str) -> FlashdutyClient | None:
    """An empty event is refused by validation: it proves the route and the key without
    creating an alert. Returns the client when the endpoint is usable."""
    client = wiring.push_client(c.config, push_url, max_attempts=1)
    try:
        client.push({})
    except FatalAPIError as exc:
        if key_rejected(exc.status, exc.code, exc.detail):
            hint = (
                f"the integration key or token in {label} was rejected: copy the push "
                "URL again from the Flashduty integration"
            )
        elif exc.status == 404:
            hint = f"no such route: check the path of {label}"
        elif exc.status == 400:
            c.add(ok("flashduty", "push", f"{label}: {_accepted(push_format)}"))
            return client
        else:
            hint = "Flashduty refused the probe unexpectedly"
        c.add(fail("flashduty", "push", f"{label}: {describe(exc)}", hint, EX_PROTOCOL))
        return None
    except RetriableAPIError as exc:
        c.add(
            fail(
                "flashduty",
                "push",
                f"{label}: {describe(exc)}",
                "Flashduty did not answer usefully; try again, or check the proxy",
            )
        )
        return None
    c.add(
        Step(
            "flashduty",
            "push",
            "warn",
            f"{label}: an empty probe was accepted",
            "unexpected: the endpoint may not be Flashduty's",
        )
    )
    return client


def openapi(c: Checker) -> None:
    """With an app_key: the OpenAPI answers, the key is accepted, the channel exists."""
    fd = c.config.flashduty
    try:
        client = wiring.openapi_client(c.config, purpose="check")
        client.call("/channel/list", {"p": 1, "limit": 1})
    except AccessDenied as exc:
        c.add(
            fail(
                "openapi",
                "app_key",
                str(exc),
                "create or copy an APP key in Flashduty and set [flashduty] app_key",
                EX_NOPERM,
            )
        )
        return
    except FdSyncError as exc:
        c.add(
            fail(
                "openapi",
                "reach",
                str(exc),
                "check [flashduty] api_domain and the proxy",
                exc.exit_code,
            )
        )
        return
    c.add(ok("openapi", "app_key", f"{fd.api_url}: app_key accepted"))
    if fd.channel_id is None:
        return
    try:
        rules = client.escalation_rules(fd.channel_id)
    except FdSyncError as exc:
        c.add(fail("openapi", "channel", str(exc), "check [flashduty] channel_id", exc.exit_code))
        return
    enabled = [r for r in rules if r.get("status") != "disabled"]
    c.add(
        ok(
            "openapi",
            "channel",
            f"channel {fd.channel_id}: {len(enabled)} enabled escalation rule(s)",
        )
    )


def send_test(c: Checker, client: FlashdutyClient) -> None:
    tag = secrets.token_hex(8)
    incident = Incident(
        sys_id=f"fdsynctest{tag}",
        number="FDSYNC-TEST",
        updated_on="",
        mod_count=0,
        state="1",
        urgency="3",
        short_description="fd-sync test alert (safe to ignore)",
        description="Sent by `fd-sync check --send-test` to prove the path to Flashduty; "
        "it is resolved right away.",
    )
    fd, sn = c.config.flashduty, c.config.servicenow

    def body(kind: Kind, version: Incident) -> dict[str, Any]:
        return build(fd.push_format, kind, version, instance_url=sn.instance_url, table=sn.table)

    try:
        opened = client.push(body(Kind.CREATE, incident))
        closed = client.push(
            body(Kind.RESOLVE, dataclasses.replace(incident, state=IncidentState.RESOLVED.value))
        )
    except (FatalAPIError, RetriableAPIError) as exc:
        c.add(
            fail(
                "flashduty",
                "send-test",
                describe(exc),
                "the probe passed but a real event did not: see the message",
                EX_PROTOCOL,
            )
        )
        return
    c.add(
        ok(
            "flashduty",
            "send-test",
            f"test alert sent (request_id "
            f"{opened.request_id}) and resolved (request_id {closed.request_id})",
        )
    )

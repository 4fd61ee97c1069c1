"""Configuration documents for the simulators, and TOML to write them as files."""

from __future__ import annotations

from typing import Any

from fd_sync.core.location import LedgerLocation, PostgresLedger
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def to_toml(document: dict[str, Any]) -> str:
    lines: list[str] = []
    for section, values in document.items():
        if isinstance(values, list):  # array of tables
            for item in values:
                lines.append(f"[[{section}]]")
                lines.extend(f"{k} = {toml_value(v)}" for k, v in item.items())
                lines.append("")
            continue
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
        lines.append("")
    return "\n".join(lines)


def base_document(
    servicenow: ServiceNowSim,
    flashduty: FlashdutySim,
    database: LedgerLocation,
    push_format: str,
) -> dict[str, Any]:
    push_url = (
        flashduty.push_url_servicenow
        if push_format == "servicenow"
        else flashduty.push_url_standard
    )
    return {
        "servicenow": {
            "instance_url": servicenow.url,
            "username": servicenow.username,
            "password": servicenow.password,
            "page_size": 50,
            "timeout_seconds": 5,
            "max_attempts": 3,
        },
        "flashduty": {"push_url": push_url, "timeout_seconds": 5, "max_attempts": 3},
        "sync": {"database": str(database), "lookback_seconds": 300, **_password(database)},
    }


def _password(database: LedgerLocation) -> dict[str, str]:
    if isinstance(database, PostgresLedger) and database.password:
        return {"database_password": database.password}
    return {}


def merge(document: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in document.items()}
    for section, values in overrides.items():
        if values is None:
            out.pop(section, None)
        elif isinstance(values, dict) and isinstance(out.get(section), dict):
            for key, value in values.items():
                if value is None:
                    out[section].pop(key, None)
                else:
                    out[section][key] = value
        else:
            out[section] = values
    return out

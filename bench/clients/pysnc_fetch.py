"""Baseline B, what a user would otherwise script: PySNC iterating a GlideRecord.

ServiceNow's official Python client, as its documentation shows it: a
GlideRecord with an encoded query, the same fields and batch size as fd-sync,
iterated to the end. Everything else is PySNC's default (offset paging,
``sysparm_display_value=all``, a rewindable record set), which is what a
script would get. One patch: PySNC refuses ``http://`` instance URLs, and the
simulators serve plain HTTP on loopback to every client alike, so the URL
check is relaxed for ``http://127.0.0.1`` only; the requests are PySNC's own.
"""

from __future__ import annotations

import argparse
import json
import sys

import pysnc
import pysnc.client

FIELDS = [
    "sys_id",
    "number",
    "short_description",
    "description",
    "state",
    "impact",
    "urgency",
    "priority",
    "assignment_group",
    "assignment_group.name",
    "assigned_to",
    "assigned_to.name",
    "sys_updated_on",
    "sys_mod_count",
    "category",
    "cmdb_ci",
    "cmdb_ci.name",
    "company",
    "company.name",
    "sys_created_on",
]  # fd-sync's own sysparm_fields (tests/unit/test_bench_clients.py keeps them equal)


def _allow_loopback_http() -> None:
    strict = pysnc.client.get_instance

    def get_instance(instance: str) -> str:
        if instance.startswith("http://127.0.0.1:"):
            return instance.rstrip("/")
        return strict(instance)

    pysnc.client.get_instance = get_instance


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--since", required=True, help="YYYY-MM-DD HH:MM:SS")
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()

    _allow_loopback_http()
    client = pysnc.ServiceNowClient(args.url, (args.username, args.password))
    gr = client.GlideRecord("incident", batch_size=args.page_size)
    gr.fields = FIELDS
    gr.add_encoded_query(f"sys_updated_on>={args.since}")
    gr.order_by("sys_updated_on")
    gr.query()
    rows = 0
    for record in gr:
        if record.get_value("sys_id"):
            rows += 1
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

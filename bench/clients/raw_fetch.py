"""Baseline A, the floor for any Python poller: fetch the keyset pages, parse the JSON.

The same requests as fd-sync's scan (query, fields, page size, parameters) over
one keep-alive ``requests.Session``, and nothing else: no ledger, no events.
Standard library and requests only, so its start-up is the least a poller pays.
``--decoder msgspec`` decodes with the decoder fd-sync uses: the floor measured two
ways, so that a ratio stays honest when the floor moves.
"""

from __future__ import annotations

import argparse
import json
import sys

import requests

FIELDS = (
    "sys_id,number,short_description,description,state,impact,urgency,priority,"
    "assignment_group,assignment_group.name,assigned_to,assigned_to.name,"
    "sys_updated_on,sys_mod_count,category,cmdb_ci,cmdb_ci.name,company,company.name,"
    "sys_created_on"
)  # fd-sync's own sysparm_fields (tests/unit/test_bench_clients.py keeps them equal)
ORDER = "^ORDERBYsys_updated_on^ORDERBYsys_id"


def keyset_query(low: str, cursor: tuple[str, str] | None) -> str:
    if cursor is None:
        return f"sys_updated_on>={low}{ORDER}"
    ts, sys_id = cursor
    return (
        f"sys_updated_on>={low}^sys_updated_on>{ts}"
        f"^NQsys_updated_on>={low}^sys_updated_on={ts}^sys_id>{sys_id}{ORDER}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--since", required=True, help="YYYY-MM-DD HH:MM:SS")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--decoder", choices=("json", "msgspec"), default="json")
    args = parser.parse_args()
    decode = json.loads
    if args.decoder == "msgspec":
        import msgspec

        decode = msgspec.json.Decoder().decode

    session = requests.Session()
    session.auth = (args.username, args.password)
    session.headers["Accept"] = "application/json"
    cursor: tuple[str, str] | None = None
    rows = 0
    while True:
        response = session.get(
            f"{args.url}/api/now/table/incident",
            params={
                "sysparm_query": keyset_query(args.since, cursor),
                "sysparm_fields": FIELDS,
                "sysparm_limit": str(args.page_size),
                "sysparm_display_value": "false",
                "sysparm_exclude_reference_link": "true",
                "sysparm_no_count": "true",
            },
            timeout=30,
        )
        response.raise_for_status()
        page = decode(response.content)["result"]
        if not page:
            break
        rows += len(page)
        cursor = (page[-1]["sys_updated_on"], page[-1]["sys_id"])
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fuzzing the record-to-event path: any JSON in, a bounded event or a quarantine out."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fd_sync.core.decide import Kind, decide
from fd_sync.core.incident import FIELDS, Incident, parse_record
from fd_sync.core.payloads import (
    DESCRIPTION_LIMIT,
    LABEL_VALUE_LIMIT,
    MAX_LABELS,
    TITLE_LIMIT,
    build,
)
from fd_sync.errors import BadRecord

# Every character, lone surrogates and control characters included.
any_text = st.text(st.characters(codec=None, categories=None), max_size=300)
hostile_text = st.one_of(
    any_text,
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            "<html><body>Login</body></html>",
            "\x00\x1b[31m\x7f",
            "\ud800",
            "\udfff tail",
            "😀" * 50,
            "a\u202eb",
            "' OR 1=1 --",
            "^NQsys_id>0",
            "9" * 400,
            "-0",
            "NaN",
            "2026-13-45 99:99:99",
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.one_of(st.sampled_from(FIELDS), any_text)
sys_ids = st.one_of(
    st.just("a" * 32), st.text("0123456789abcdef", min_size=32, max_size=32), json_values
)
stamps = st.one_of(
    st.just("2026-11-01 08:00:00"),
    st.sampled_from(["", "yesterday", "2026-11-01T08:00:00Z", "2026-11-01 08:00"]),
    json_values,
)


@st.composite
def records(draw):
    record = draw(st.dictionaries(field_names, json_values, max_size=12))
    if draw(st.booleans()):
        record["sys_id"] = draw(sys_ids)
    if draw(st.booleans()):
        record["sys_updated_on"] = draw(stamps)
    return record


def check_event_bounds(incident: Incident) -> None:
    for fmt in ("standard", "servicenow"):
        for kind in Kind:
            body = build(
                fmt, kind, incident, instance_url="https://x.service-now.com", table="incident"
            )
            wire = json.dumps(body, ensure_ascii=False).encode("utf-8")  # must be encodable
            assert len(wire) < 200_000
            if fmt == "standard":
                assert 0 < len(body["title_rule"]) <= TITLE_LIMIT
                assert len(body["description"]) <= DESCRIPTION_LIMIT
                assert len(body["labels"]) <= MAX_LABELS
                assert all(len(v) <= LABEL_VALUE_LIMIT for v in body["labels"].values())
                assert len(body["alert_key"]) <= 255
            elif kind is not Kind.RESOLVE:
                assert len(body["short_description"]) <= TITLE_LIMIT
                assert len(body["description"]) <= DESCRIPTION_LIMIT


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(records(), json_values))
def test_any_json_is_an_event_within_limits_or_a_quarantine(raw):
    try:
        incident = parse_record(raw)
    except BadRecord as exc:
        assert str(exc)  # a reason for the quarantine log
        return
    check_event_bounds(incident)
    decision = decide(incident, None)  # the decision core takes whatever parsed
    assert decision is not None


@pytest.mark.parametrize(
    "description",
    ["x" * 10_000_000, "\ud83d" * 1000 + "tail", "<html>" * 100_000, "\x00" * 5000],
    ids=["10MB", "surrogates", "html", "nul-bytes"],
)
def test_huge_and_broken_strings(description):
    incident = parse_record(
        {
            "sys_id": "b" * 32,
            "sys_updated_on": "2026-11-01 08:00:00",
            "number": "INC1",
            "state": "1",
            "description": description,
            "short_description": description,
        }
    )
    check_event_bounds(incident)


def test_reference_objects_and_numbers_are_coerced():
    incident = parse_record(
        {
            "sys_id": "c" * 32,
            "sys_updated_on": "2026-11-01 08:00:00",
            "number": 10001,
            "state": 2,
            "urgency": 1.0,
            "sys_mod_count": "12",
            "assignment_group": {"link": "https://x/api/now/table/sys_user_group/g", "value": "g1"},
            "assignment_group.name": {"display_value": "Network", "value": "g1"},
        }
    )
    assert incident.number == "10001"
    assert incident.state == "2" and incident.is_open
    assert incident.assignment_group_id == "g1"
    assert incident.assignment_group == "Network"
    assert incident.mod_count == 12


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"sys_updated_on": "2026-11-01 08:00:00"}, "sys_id missing"),
        ({"sys_id": "d" * 32}, "sys_updated_on missing"),
        ({"sys_id": "x^NQsys_id>0", "sys_updated_on": "2026-11-01 08:00:00"}, "malformed"),
        ({"sys_id": "d" * 32, "sys_updated_on": "2026-11-01T08:00:00"}, "YYYY-MM-DD HH:MM:SS"),
        (["not", "an", "object"], "not an object"),
    ],
)
def test_unplaceable_rows_are_quarantined_with_a_reason(raw, reason):
    with pytest.raises(BadRecord, match=reason.replace("^", r"\^")):
        parse_record(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_the_fast_decoder_means_what_json_means(value):
    from fd_sync.http.transport import decode_json

    text = json.dumps(value).encode()
    assert decode_json(text) == json.loads(text)


@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_the_fast_decoder_refuses_what_json_refuses(raw):
    from fd_sync.http.transport import decode_json

    try:
        expected: object = json.loads(raw)
    except ValueError:
        expected = ValueError
    try:
        got: object = decode_json(raw)
    except ValueError:
        got = ValueError
    assert json.dumps(got, default=repr) == json.dumps(expected, default=repr)  # NaN too


def test_documents_msgspec_refuses_are_decoded_by_json():
    from fd_sync.http.transport import decode_json

    assert decode_json(b'{"x": 1e400}') == {"x": float("inf")}
    assert decode_json(b'"\\ud800"') == "\ud800"
    assert decode_json(b'{"a": 1, "a": 2}') == {"a": 2}


versions = st.one_of(
    st.sampled_from(["3", "0", " 7", "07", "٣", "12345678901234567890", "-1"]), json_values
)
states = st.one_of(st.sampled_from(["6", "7", "8", "1", " 6", "6 ", "٦", ""]), json_values)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), versions, states)
def test_a_rows_version_is_what_parse_record_says(record, mod_count, state):
    """The planner decides from row_version before parsing (issue 14): it must agree with
    parse_record on every row, and refuse exactly the rows parse_record quarantines."""
    from fd_sync.core.incident import CLOSED_STATES, row_version

    record = {**record, "sys_mod_count": mod_count, "state": state}
    version = row_version(record)
    try:
        incident = parse_record(record)
    except BadRecord:
        assert version is None
        return
    assert version is not None
    assert (version.sys_id, version.updated_on, version.mod_count) == (
        incident.sys_id,
        incident.updated_on,
        incident.mod_count,
    )
    assert version.closed == (incident.state in CLOSED_STATES)

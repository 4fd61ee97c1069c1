"""Configuration: every mistake is one line naming the file, the key and the fix; exit 78."""

from __future__ import annotations

from pathlib import Path

import pytest

from fd_sync import config as config_module
from fd_sync.config import config_path, default_database, load, parse, push_format
from fd_sync.errors import ConfigError
from tests.helpers.config import to_toml

PUSH = "https://api.flashcat.cloud/event/push/servicenow/tok3n-abcdef"


def minimal(**overrides: dict) -> dict:
    doc = {
        "servicenow": {
            "instance_url": "https://acme.service-now.com",
            "username": "svc",
            "password": "pw-secret-1",
        },
        "flashduty": {"push_url": PUSH},
        "sync": {"database": "/tmp/x.db"},
    }
    for section, values in overrides.items():
        doc.setdefault(section, {}).update(values)
    return doc


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_defaults():
    cfg = parse(minimal(), path=Path("/etc/fd-sync/config.toml"), env={})
    assert cfg.servicenow.table == "incident"
    assert cfg.servicenow.page_size == 500
    assert cfg.servicenow.max_attempts == 5
    assert cfg.flashduty.push_format == "servicenow"
    assert cfg.sync.lookback_seconds == 300
    assert cfg.sync.poll_interval_seconds == 60


def test_the_example_file_is_valid_and_documents_every_key():
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    text = example.read_text()
    cfg = parse(__import__("tomllib").loads(text), path=example, env={})
    assert cfg.servicenow.instance_url.startswith("https://")
    for section, keys in config_module.SCHEMA.items():
        for key in keys:
            assert key in text, f"[{section}] {key} is not documented in config.example.toml"


@pytest.mark.parametrize(
    ("url", "fmt"),
    [
        ("https://api.flashcat.cloud/event/push/servicenow/abc", "servicenow"),
        ("https://api.flashcat.cloud/event/push/alert/standard?integration_key=k", "standard"),
        ("https://fd.internal/event/push/alert/standard/?integration_key=k", "standard"),
        ("https://api.flashcat.cloud/event/push/alert/standard", None),
        ("https://api.flashcat.cloud/event/push/other/abc", None),
    ],
)
def test_push_format_follows_the_path(url, fmt):
    assert push_format(url) == fmt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[servicenow\ninstance_url = 1", "not valid TOML"),
        ("[servicenow]\npage_size = 5\npage_size 7", "line 3"),
        ("[servicenw]\n", "did you mean 'servicenow'"),
        (
            "[servicenow]\npage_sise = 5",
            "[servicenow] page_sise: unknown key (did you mean 'page_size'?)",
        ),
        ('[servicenow]\npage_size = "five"', "[servicenow] page_size: expected an integer"),
        ("[servicenow]\npage_size = 0", "[servicenow] page_size: must be between 1 and 10000"),
        ("[servicenow]\npage_size = true", "[servicenow] page_size: expected an integer"),
        ("[sync]\nlookback_seconds = -1", "[sync] lookback_seconds: must be between 0 and 86400"),
        ('[servicenow]\nquery = "active=true^NQpriority=1"', "may not contain ^NQ"),
        ('[servicenow]\nquery = "ORDERBYnumber"', "may not contain ORDERBY"),
        ('[servicenow]\ntable = "Incident; drop"', "[servicenow] table"),
        ('[servicenow]\nauth = "kerberos"', "must be one of 'basic', 'oauth'"),
        ('[servicenow]\nextra_fields = ["u-svc"]', "[servicenow] extra_fields: must be incident"),
        ('[servicenow]\nextra_fields = ["priority"]', "'priority' is fetched already"),
        ("[servicenow]\nsync_comments = 1", "[servicenow] sync_comments: expected true or false"),
        ('[flashduty]\napi_domain = "api.x.com/v1"', "[flashduty] api_domain: must be a host"),
        ("[flashduty]\nchannel_id = 0", "[flashduty] channel_id: must be between 1 and"),
        ('[routing]\ndefault = "drop"', "[routing] default: must be one of 'send', 'skip'"),
        ('[routing]\nseverity_by = "impact"', "must be one of 'urgency', 'priority'"),
        ("[route]\nname = 'x'", "route must be written as [[route]] tables"),
    ],
)
def test_mistakes_name_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert "\n" not in message
    assert info.value.exit_code == 78


def test_required_keys(tmp_path):
    doc = minimal()
    del doc["servicenow"]["password"]
    with pytest.raises(ConfigError, match=r"\[servicenow\] password: is required"):
        load(write(tmp_path, to_toml(doc)), env={})
    doc = minimal()
    del doc["flashduty"]["push_url"]
    with pytest.raises(ConfigError, match=r"\[flashduty\] push_url: is required"):
        load(write(tmp_path, to_toml(doc)), env={})


def test_a_wrong_push_url_is_explained_without_echoing_its_token(tmp_path):
    doc = minimal(flashduty={"push_url": "https://api.flashcat.cloud/v1/hook/SECRETTOKEN99"})
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, to_toml(doc)), env={})
    assert "/event/push/servicenow/<token>" in str(info.value)
    assert "SECRETTOKEN99" not in str(info.value)


def test_instance_url_must_be_the_root(tmp_path):
    doc = minimal(servicenow={"instance_url": "https://acme.service-now.com/now/nav/ui"})
    with pytest.raises(ConfigError, match=r"without a path, e\.g\. https://acme\.service-now\.com"):
        load(write(tmp_path, to_toml(doc)), env={})


def test_http_is_accepted_with_a_warning():
    doc = minimal(servicenow={"instance_url": "http://127.0.0.1:8080"})
    cfg = parse(doc, path=Path("c.toml"), env={})
    assert any("unencrypted" in w for w in cfg.warnings)


def test_secret_precedence_env_then_credential_then_file_then_inline(tmp_path):
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file-pw\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "servicenow_password").write_text("from-credential")
    doc = minimal(servicenow={"password_file": str(secret_file)})

    def password(env):
        return parse(doc, path=tmp_path / "c.toml", env=env).servicenow.password

    assert password({}) == "from-file-pw"
    assert password({"CREDENTIALS_DIRECTORY": str(creds)}) == "from-credential"
    both = {"CREDENTIALS_DIRECTORY": str(creds), "FD_SYNC_SERVICENOW_PASSWORD": "from-env"}
    assert password(both) == "from-env"
    del doc["servicenow"]["password_file"]
    assert password({}) == "pw-secret-1"


def test_push_url_from_the_environment(tmp_path):
    doc = minimal()
    del doc["flashduty"]["push_url"]
    env = {"FD_SYNC_FLASHDUTY_PUSH_URL": PUSH}
    assert parse(doc, path=tmp_path / "c.toml", env=env).flashduty.push_url == PUSH


def test_unreadable_password_file(tmp_path):
    doc = minimal(servicenow={"password_file": str(tmp_path / "missing")})
    with pytest.raises(
        ConfigError, match=r"\[servicenow\] password_file: .*missing does not exist"
    ):
        parse(doc, path=tmp_path / "c.toml", env={})


def test_oauth_needs_client_credentials():
    doc = minimal(servicenow={"auth": "oauth"})
    with pytest.raises(ConfigError, match=r"\[servicenow\] client_id: is required"):
        parse(doc, path=Path("c.toml"), env={})
    doc = minimal(servicenow={"auth": "oauth", "client_id": "cid"})
    with pytest.raises(ConfigError, match=r"client_secret: is required"):
        parse(doc, path=Path("c.toml"), env={})
    doc = minimal(servicenow={"auth": "oauth", "client_id": "cid", "client_secret": "cs-secret"})
    assert parse(doc, path=Path("c.toml"), env={}).servicenow.auth == "oauth"


def test_status_may_load_without_secrets(tmp_path):
    doc = minimal()
    del doc["servicenow"]["password"]
    del doc["flashduty"]["push_url"]
    cfg = parse(doc, path=tmp_path / "c.toml", env={}, secrets_required=False)
    assert cfg.sync.database == Path("/tmp/x.db")


def test_config_path_precedence():
    assert config_path("a.toml", {"FD_SYNC_CONFIG": "b.toml"}) == Path("a.toml")
    assert config_path(None, {"FD_SYNC_CONFIG": "b.toml"}) == Path("b.toml")
    assert config_path(None, {}) == Path("/etc/fd-sync/config.toml")


def test_database_defaults_to_systemd_state_directory(tmp_path):
    assert default_database({"STATE_DIRECTORY": "/var/lib/fd-sync:/x"}) == Path(
        "/var/lib/fd-sync/fd-sync.db"
    )
    doc = minimal()
    del doc["sync"]["database"]
    cfg = parse(doc, path=tmp_path / "c.toml", env={"STATE_DIRECTORY": str(tmp_path)})
    assert cfg.sync.database == tmp_path / "fd-sync.db"


def test_relative_database_is_relative_to_the_config_file(tmp_path):
    doc = minimal(sync={"database": "state/ledger.db"})
    cfg = parse(doc, path=tmp_path / "c.toml", env={})
    assert cfg.sync.database == tmp_path / "state" / "ledger.db"


def test_a_group_readable_file_with_secrets_gets_a_chmod_hint(tmp_path):
    path = write(tmp_path, to_toml(minimal()), mode=0o644)
    cfg = load(path, env={})
    assert any(f"chmod 600 {path}" in w for w in cfg.warnings)
    path.chmod(0o600)
    assert not load(path, env={}).warnings


def test_ca_bundle_must_be_a_readable_pem(tmp_path):
    doc = minimal(http={"ca_bundle": str(tmp_path / "missing.pem")})
    with pytest.raises(ConfigError, match=r"\[http\] ca_bundle: cannot read"):
        parse(doc, path=tmp_path / "c.toml", env={})
    (tmp_path / "junk.pem").write_text("not a certificate")
    doc = minimal(http={"ca_bundle": "junk.pem"})
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        parse(doc, path=tmp_path / "c.toml", env={})


def test_proxy_credentials_are_secrets(tmp_path):
    from fd_sync import redaction

    doc = minimal(http={"proxy": "http://user:proxy-pass-77@proxy.corp:3128"})
    cfg = parse(doc, path=tmp_path / "c.toml", env={})
    assert "proxy-pass-77" in cfg.secrets()
    # parse() has no side effects; load() registers the secrets for redaction.
    assert "proxy-pass-77" in redaction.redact("via http://user:proxy-pass-77@proxy.corp")
    path = tmp_path / "c.toml"
    path.write_text(to_toml(doc))
    load(path, env={})
    assert "proxy-pass-77" not in redaction.redact("via http://user:proxy-pass-77@proxy.corp")


@pytest.mark.parametrize("proxy", ["socks5://proxy:1080", "socks5h://user:pw@proxy:1080"])
def test_a_socks_proxy_is_refused_at_load(tmp_path, proxy):
    """requests would fail at the first request ("InvalidSchema", after every retry)."""
    with pytest.raises(ConfigError) as info:
        parse(minimal(http={"proxy": proxy}), path=tmp_path / "c.toml", env={})
    assert "[http] proxy: socks5" in str(info.value) and "http://proxy:3128" in str(info.value)
    assert "pw" not in str(info.value)


@pytest.mark.parametrize(
    "query",
    ["active=true", "stateIN1,2,3", "category=network^ORincident_state!=7", "resolved_atISEMPTY"],
)
def test_a_query_on_a_lifecycle_field_is_refused(tmp_path, query):
    """Such a query drops incidents from the scan exactly when they close: no resolve, ever."""
    with pytest.raises(ConfigError) as info:
        parse(minimal(servicenow={"query": query}), path=tmp_path / "c.toml", env={})
    message = str(info.value)
    assert "[servicenow] query: may not filter on" in message
    assert "skip route" in message and '[routing] default = "skip"' in message


def test_a_query_on_other_fields_is_accepted(tmp_path):
    cfg = parse(
        minimal(servicenow={"query": "category=network^ORassignment_group.name=Network"}),
        path=tmp_path / "c.toml",
        env={},
    )
    assert cfg.servicenow.query == "category=network^ORassignment_group.name=Network"


def test_a_bad_push_url_from_the_environment_names_the_variable(tmp_path):
    doc = minimal()
    doc["flashduty"].pop("push_url")
    with pytest.raises(ConfigError) as info:
        parse(doc, path=tmp_path / "c.toml", env={"FD_SYNC_FLASHDUTY_PUSH_URL": "garbage-xyz"})
    message = str(info.value)
    assert message.startswith("environment variable FD_SYNC_FLASHDUTY_PUSH_URL, for [flashduty]")
    assert "c.toml" not in message and "garbage-xyz" not in message


def test_a_bad_push_url_from_a_credential_names_the_credential(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "flashduty_push_url").write_text("https://example.com/not-a-push-url\n")
    doc = minimal()
    doc["flashduty"].pop("push_url")
    with pytest.raises(ConfigError) as info:
        parse(doc, path=tmp_path / "c.toml", env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert str(info.value).startswith("systemd credential flashduty_push_url")


def test_every_secret_knows_where_it_came_from(tmp_path):
    (tmp_path / "pw").write_text("from-a-file\n")
    doc = minimal(servicenow={"password_file": "pw"})
    doc["servicenow"].pop("password", None)
    cfg = parse(doc, path=tmp_path / "c.toml", env={"FD_SYNC_FLASHDUTY_APP_KEY": "k" * 20})
    sources = dict(cfg.secret_sources)
    assert sources["[servicenow] password"] == (
        f"file {tmp_path / 'pw'} ([servicenow] password_file)"
    )
    assert sources["[flashduty] app_key"] == "environment variable FD_SYNC_FLASHDUTY_APP_KEY"
    assert sources["[flashduty] push_url"] == f"{tmp_path / 'c.toml'}: [flashduty] push_url"
    assert "from-a-file" not in str(cfg.secret_sources)


def _example_keys() -> dict[str, dict[str, list[object]]]:
    """Every ``key = value`` of config.example.toml, commented out or not, by section."""
    import re
    import tomllib

    found: dict[str, dict[str, list[object]]] = {}
    section = None
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    for line in example.read_text().splitlines():
        if heading := re.match(r"^[#\s]*\[\[?([a-z_]+)\]\]?\s*$", line):
            section = heading.group(1)
        elif section and (pair := re.match(r"^[#\s]*([a-z_]+)\s*=\s*(.+)$", line)):
            try:
                value = tomllib.loads(f"v = {pair.group(2)}")["v"]
            except tomllib.TOMLDecodeError:
                continue  # prose that happens to hold an equals sign
            found.setdefault(section, {}).setdefault(pair.group(1), []).append(value)
    return found


def test_the_example_names_every_key_with_its_default():
    """config.example.toml is where operators start: a key it does not show, or shows
    with another default than the schema's, is a key they cannot find or will misjudge."""
    from fd_sync.config.schema import _REQUIRED, ARRAY_SECTIONS, SCHEMA

    shown = _example_keys()
    problems = []
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            values = shown.get(section, {}).get(key)
            if values is None:
                problems.append(f"[{section}] {key} is not in config.example.toml")
                continue
            default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
            if section in ARRAY_SECTIONS or default is _REQUIRED or default is None:
                continue  # an example value, not a default, is what an optional key shows
            if default not in values:
                problems.append(f"[{section}] {key}: default {default!r}, example {values}")
    assert problems == []


def test_every_configuration_field_comes_from_its_key_or_its_parser():
    """No dataclass of the validated configuration carries a default of its own: defaults
    live in the schema alone, so the two can never disagree."""
    import dataclasses

    from fd_sync.config import model

    with_defaults = [
        f"{cls.__name__}.{f.name}"
        for cls in vars(model).values()
        if isinstance(cls, type)
        and dataclasses.is_dataclass(cls)
        and cls.__module__ == model.__name__
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    assert with_defaults == []


def test_a_byte_order_mark_is_not_a_toml_error(tmp_path):
    """Some Windows editors save UTF-8 with a BOM; it was reported as "Invalid statement"
    (issue 23, item 13)."""
    plain = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text()
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + plain.encode())
    assert load(path, env={}).servicenow.table == "incident"


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"acknowledge_state": "6"}, "acknowledge_state"),  # an ack would resolve it
        ({"acknowledge_state": "1"}, "acknowledge_state"),  # New is where it already is
        ({"resolve_state": "1"}, "resolve_state"),  # a close would move it backwards
        ({"resolve_state": "2"}, "resolve_state"),
    ],
)
def test_state_changes_only_move_forward(tmp_path, keys, named):
    """acknowledge_state = "6" made an ack resolve the incident while the alert stayed
    open, and resolve_state = "1" moved incidents backwards (issue 23, item 5)."""
    doc = minimal()
    doc["flashduty"]["app_key"] = "k"
    doc["writeback"] = {"enabled": True, **keys}
    with pytest.raises(ConfigError, match=rf"\[writeback\] {named}:"):
        load(write(tmp_path, to_toml(doc)), env={})


def test_a_custom_state_code_passes_the_file_and_is_left_to_check(tmp_path):
    doc = minimal()
    doc["flashduty"]["app_key"] = "k"
    doc["writeback"] = {"enabled": True, "acknowledge_state": "2", "resolve_state": "9"}
    assert load(write(tmp_path, to_toml(doc)), env={}).writeback.resolve_state == "9"


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (
            {"writeback": {"assign": "acknowledger"}},
            "[writeback] assign: needs [writeback] enabled",
        ),
        ({"writeback": {"severity": True}}, "[writeback] severity: needs [writeback] enabled"),
        (
            {"writeback": {"enabled": True, "assign": "owner"}, "flashduty": {"app_key": "k" * 20}},
            "[writeback] assign: must be one of '', 'acknowledger', 'assignee'",
        ),
        ({"forward": {"work_notes": True}}, "[forward] work_notes: needs [flashduty] app_key"),
        ({"forward": {"assignment": True}}, "[forward] assignment: needs [flashduty] app_key"),
        (
            {"tickets": {"enabled": True, "channel_ids": [1]}, "flashduty": {"app_key": "k" * 20}},
            "[tickets] enabled: needs [writeback] enabled = true",
        ),
        (
            {
                "tickets": {"channel_ids": [1], "severities": ["High"]},
            },
            "[tickets] severities: 'High' is not a severity",
        ),
        (
            {"tickets": {"severity": {"Critical": {"urgency": "0", "impact": "1"}}}},
            "[tickets] severity.Critical: urgency and impact are ServiceNow values",
        ),
    ],
)
def test_field_sync_and_tickets_keys_are_checked(overrides, says):
    with pytest.raises(ConfigError) as caught:
        parse(minimal(**overrides), path=Path("/etc/fd-sync/config.toml"), env={})
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_servicenow_budget_too_small_for_the_interval_is_said_at_load():
    """Issue 24: 360 idle polls an hour do not fit 300 less the reserve: say so (the daemon
    will stretch its interval) rather than let the operator wonder why it polls slower."""
    tight = minimal(servicenow={"max_requests_per_hour": 300}, sync={"poll_interval_seconds": 10})
    cfg = parse(tight, path=Path("/etc/fd-sync/config.toml"), env={})
    (warning,) = [w for w in cfg.warnings if "max_requests_per_hour" in w]
    assert "360 requests an hour when idle, 270 usable" in warning
    assert "every 14 s or more" in warning
    roomy = minimal(servicenow={"max_requests_per_hour": 500}, sync={"poll_interval_seconds": 10})
    assert not parse(roomy, path=Path("/etc/fd-sync/config.toml"), env={}).warnings
    with pytest.raises(ConfigError, match="at least 60"):
        parse(minimal(servicenow={"max_requests_per_hour": 10}), path=Path("/x.toml"), env={})
    with pytest.raises(ConfigError, match="between 1 and 1000"):
        parse(
            minimal(flashduty={"max_openapi_requests_per_minute": 1001}),
            path=Path("/x.toml"),
            env={},
        )

"""``Settings`` is composed of parts (widget, Slack, Matrix, email) read from the contract's flat names."""

from __future__ import annotations

import ipaddress
from datetime import time
from operator import attrgetter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

import adapters.email
import adapters.matrix
import adapters.slack
from config.loading import ConfigError, load_settings
from config.schedule import Weekly
from config.settings import EmailSettings, MatrixSettings, Settings, SlackSettings, WebhookSettings, WidgetSettings
from config.variables import VARIABLES


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


# every variable of CONTRACT §2 → (a value, where it lands, what it is there)
CONTRACT: dict[str, tuple[str, str, Any]] = {
    "SITECHAT_DATABASE_URL": ("postgresql+asyncpg://db/x", "database_url", "postgresql+asyncpg://db/x"),
    "SITECHAT_HOST": ("0.0.0.0", "widget.host", "0.0.0.0"),
    "SITECHAT_PORT": ("9090", "widget.port", 9090),
    "SITECHAT_PUBLIC_URL": ("https://chat.acme.example/", "widget.public_url", "https://chat.acme.example"),
    "SITECHAT_NOTE_PREFIX": ("%%", "note_prefix", "%%"),
    "SITECHAT_INACTIVITY_CLOSE_MINUTES": ("0.1", "inactivity_close_minutes", 0.1),
    "SITECHAT_FIRST_RESPONSE_ALERT_SECONDS": ("2.5", "first_response_alert_seconds", 2.5),
    "SITECHAT_REMINDER_MAX": ("5", "reminder_max", 5),
    "SITECHAT_REMINDER_MENTION": ("S0123ABCD", "reminder_mention", "S0123ABCD"),
    "SITECHAT_SHUTDOWN_SECONDS": ("4.5", "shutdown_seconds", 4.5),
    "SITECHAT_RATE_CONVERSATIONS_PER_HOUR": ("5", "widget.conversations_per_hour", 5),
    "SITECHAT_RATE_MESSAGES_PER_MINUTE": ("6", "widget.messages_per_minute", 6),
    "SITECHAT_RATE_SOCKETS_PER_ADDRESS": ("7", "widget.sockets_per_address", 7),
    "SITECHAT_TRUSTED_PROXIES": ("10.0.0.0/8", "widget.trusted_proxies", (ipaddress.ip_network("10.0.0.0/8"),)),
    "SITECHAT_GEOIP_DB": (__file__, "widget.geoip_db", Path(__file__)),  # any file that is there
    "SITECHAT_SMTP_URL": ("smtp://u:p@mail.example:587", "email.smtp_url", "smtp://u:p@mail.example:587"),
    "SITECHAT_MAIL_FROM": ("help@acme.example", "email.mail_from", "help@acme.example"),
    "SITECHAT_INBOUND_SMTP": ("[::]:25", "email.inbound_smtp", ("::", 25)),
    "SITECHAT_INBOUND_DOMAIN": ("Reply.Acme.Example.", "email.inbound_domain", "reply.acme.example"),
    "SITECHAT_FOLLOW_UP_MINUTES": ("0.5", "follow_up_minutes", 0.5),
    "SITECHAT_WEBHOOK_URL": ("https://crm.example/hook", "webhook.url", "https://crm.example/hook"),
    "SITECHAT_WEBHOOK_SECRET": ("0123456789abcdef0123", "webhook.secret", "0123456789abcdef0123"),
    "SITECHAT_RETENTION_DAYS": ("0.5", "retention_days", 0.5),
    "SITECHAT_UPLOAD_TYPES": (
        "image/PNG, application/pdf",
        "widget.upload_types",
        frozenset({"image/png", "application/pdf"}),
    ),
    "SITECHAT_REPORT_SCHEDULE": ("tuesday 7:30", "report_schedule", Weekly(1, time(7, 30))),
    "SITECHAT_UPLOAD_MAX_MB": ("2.5", "widget.upload_max_mb", 2.5),
    "SITECHAT_ATTACHMENT_LINK_HOURS": ("1", "widget.attachment_link_hours", 1.0),
    "SLACK_BOT_TOKEN": ("xoxb-9-9-9", "slack.bot_token", "xoxb-9-9-9"),
    "SLACK_SIGNING_SECRET": ("shh", "slack.signing_secret", "shh"),
    "SLACK_APP_TOKEN": ("xapp-1-A-2-b", "slack.app_token", "xapp-1-A-2-b"),
    "SLACK_API_URL": ("http://127.0.0.1:9/api", "slack.api_url", "http://127.0.0.1:9/api/"),
    "SLACK_POSTS_PER_SECOND": ("2.5", "slack.posts_per_second", 2.5),
    "MATRIX_HOMESERVER": ("https://matrix.example.org", "matrix.homeserver", "https://matrix.example.org"),
    "MATRIX_USER_ID": ("@bot:example.org", "matrix.user_id", "@bot:example.org"),
    "MATRIX_PASSWORD": ("pw", "matrix.password", "pw"),
    "MATRIX_ACCESS_TOKEN": ("syt_x", "matrix.access_token", "syt_x"),
    "MATRIX_DEVICE_ID": ("DEV1", "matrix.device_id", "DEV1"),
    "MATRIX_STAFF": ("@a:example.org, :example.org", "matrix.staff", ("@a:example.org", ":example.org")),
    "MATRIX_STORE_PATH": ("/var/lib/sitechat/store", "matrix.store_path", "/var/lib/sitechat/store"),
    "MATRIX_TRUST": ("verified", "matrix.trust", "verified"),
}
NEEDS = {  # what a part needs besides the variable under test, to be on at all
    "email": {
        "SITECHAT_SMTP_URL": "smtp://mail.example",
        "SITECHAT_MAIL_FROM": "a@acme.example",
        # the two go together: each is tested with the other set
        "SITECHAT_INBOUND_SMTP": "0.0.0.0:2525",
        "SITECHAT_INBOUND_DOMAIN": "reply.acme.example",
    },
    "webhook": {"SITECHAT_WEBHOOK_URL": "https://crm.example/h", "SITECHAT_WEBHOOK_SECRET": "0123456789abcdef"},
    "matrix": {"MATRIX_HOMESERVER": "https://m.example", "MATRIX_USER_ID": "@b:m.example", "MATRIX_PASSWORD": "x"},
}


@pytest.mark.parametrize("name", list(CONTRACT))
def test_each_contract_variable_lands_in_its_part(env: pytest.MonkeyPatch, name: str) -> None:
    value, where, expected = CONTRACT[name]
    for key, needed in NEEDS.get(where.partition(".")[0], {}).items():
        env.setenv(key, needed)
    env.setenv(name, value)
    assert _plain(attrgetter(where)(load_settings())) == expected


def test_the_table_names_every_field_once() -> None:
    """A field without a variable could not be set; a variable without a field would be read into nothing."""
    parts: dict[str | None, type[BaseModel]] = {
        None: Settings,
        "widget": WidgetSettings,
        "slack": SlackSettings,
        "matrix": MatrixSettings,
        "email": EmailSettings,
        "webhook": WebhookSettings,
    }
    places = [(v.part, v.field) for v in VARIABLES]
    assert len(places) == len(set(places))
    not_variables = {*parts, "sites"}  # the parts themselves, and the SITECHAT_SITES__… blocks
    fields = {(part, f) for part, model in parts.items() for f in model.model_fields if f not in not_variables}
    assert set(places) == fields
    assert set(CONTRACT) | {"SITECHAT_SNIPPETS_FILE"} == {v.name for v in VARIABLES}


def test_defaults(env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (s.database_url, s.note_prefix, s.inactivity_close_minutes, s.first_response_alert_seconds) == (
        "sqlite+aiosqlite:///./sitechat.db",
        "//",
        30,
        60,
    )
    assert s.snippets == {}
    assert s.widget == WidgetSettings(
        host="127.0.0.1",
        port=8080,
        public_url="http://127.0.0.1:8080",
        conversations_per_hour=20,
        messages_per_minute=30,
        sockets_per_address=20,
        trusted_proxies=(),
    )
    assert s.slack is not None and s.slack.api_url == "https://slack.com/api/" and s.slack.app_token is None
    assert (s.matrix, s.email) == (None, None)


def test_the_public_url_follows_host_and_port(env: pytest.MonkeyPatch) -> None:
    env.setenv("SITECHAT_HOST", "0.0.0.0")
    env.setenv("SITECHAT_PORT", "9000")
    assert load_settings().widget.public_url == "http://0.0.0.0:9000"


def test_a_part_is_off_while_its_switch_is_unset_or_empty(env: pytest.MonkeyPatch) -> None:
    env.setenv("MATRIX_USER_ID", "@b:m.example")  # set, yet nothing without MATRIX_HOMESERVER
    env.setenv("SITECHAT_MAIL_FROM", "a@acme.example")  # nor without SITECHAT_SMTP_URL
    s = load_settings()
    assert s.slack is not None and (s.matrix, s.email) == (None, None)
    env.setenv("MATRIX_HOMESERVER", "")
    env.setenv("SITECHAT_SMTP_URL", "")
    s = load_settings()
    assert (s.matrix, s.email) == (None, None)
    env.setenv("SLACK_BOT_TOKEN", "")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == ["site 'acme' routes to Slack but SLACK_BOT_TOKEN is not set (xoxb-…)"]


# a part that is on but incomplete → its line
INCOMPLETE: list[tuple[dict[str, str], str]] = [
    (
        {"MATRIX_HOMESERVER": "https://m.example", "MATRIX_PASSWORD": "x"},
        "MATRIX_USER_ID is needed with MATRIX_HOMESERVER; for example MATRIX_USER_ID=@sitechat:example.org",
    ),
    (
        {"MATRIX_HOMESERVER": "https://m.example", "MATRIX_USER_ID": "@b:m.example"},
        "MATRIX_PASSWORD or MATRIX_ACCESS_TOKEN is needed with MATRIX_HOMESERVER",
    ),
    (
        {"SITECHAT_SMTP_URL": "smtp://mail.example"},
        "SITECHAT_MAIL_FROM is needed with SITECHAT_SMTP_URL; for example SITECHAT_MAIL_FROM=support@acme.example",
    ),
    (
        {"SITECHAT_SMTP_URL": "smtp://mail.example", "SITECHAT_MAIL_FROM": "help"},
        "SITECHAT_MAIL_FROM: must be an address, e.g. support@acme.example (got 'help')",
    ),
    (
        {"SITECHAT_SMTP_URL": "http://u:SECRET@mail.example", "SITECHAT_MAIL_FROM": "a@acme.example"},
        "SITECHAT_SMTP_URL: must look like smtp://user:pass@mail.example.org:587 (or smtps://)",
    ),
]


@pytest.mark.parametrize(("given", "expected"), INCOMPLETE, ids=[e.split(":")[0] for _, e in INCOMPLETE])
def test_an_incomplete_part_is_named(env: pytest.MonkeyPatch, given: dict[str, str], expected: str) -> None:
    for key, value in given.items():
        env.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == [expected]


def test_code_configures_it_by_the_same_names() -> None:
    s = Settings(
        _env_file=None,  # type: ignore[call-arg]
        port=9999,
        rate_messages_per_minute=3,
        slack_bot_token="xoxb-1",
        slack_app_token="xapp-1",
        slack_signing_secret=None,
    )
    assert (s.widget.port, s.widget.messages_per_minute, s.widget.public_url) == (9999, 3, "http://127.0.0.1:9999")
    assert s.slack == SlackSettings(bot_token=SecretStr("xoxb-1"), app_token=SecretStr("xapp-1"))
    whole = Settings(_env_file=None, slack=s.slack, widget=s.widget)  # type: ignore[call-arg]
    assert (whole.slack, whole.widget) == (s.slack, s.widget)
    with pytest.raises(ValidationError, match="not both"):
        Settings(_env_file=None, slack=s.slack, slack_api_url="http://x/")  # type: ignore[call-arg]


def test_settings_and_parts_are_frozen_and_keep_secrets(env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.slack is not None
    with pytest.raises(ValidationError):
        s.slack.api_url = "http://elsewhere/"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.note_prefix = "#"  # type: ignore[misc]
    assert "xoxb-1-2-3" not in repr(s) + s.model_dump_json()


def test_routes_per_endpoint(env: pytest.MonkeyPatch) -> None:
    for key, value in NEEDS["matrix"].items():
        env.setenv(key, value)
    env.setenv("SITECHAT_SITES__ACME__MATRIX_ROOM", "!a:m.example")
    env.setenv("SITECHAT_SITES__ACME__TOPICS__SALES__LABEL", "Sales")
    env.setenv("SITECHAT_SITES__ACME__TOPICS__SALES__MATRIX_ROOM", "!s:m.example")
    env.setenv("SITECHAT_SITES__SHOP__NAME", "Shop")
    env.setenv("SITECHAT_SITES__SHOP__ORIGINS", "https://shop.example")
    env.setenv("SITECHAT_SITES__SHOP__SLACK_CHANNEL", "C0SUPPORT")
    s = load_settings()
    assert s.routes_to("matrix") == ["!a:m.example", "!s:m.example"]
    assert s.routes_to("slack") == ["C0SUPPORT"]
    assert s.routes_to("email") == []


# -- each adapter's factory takes its own part, and is off without it ---------------------------------


def test_each_factory_builds_from_its_part_alone() -> None:
    state: Any = SimpleNamespace(files=object())  # the durable state each endpoint gets, with the files
    assert adapters.slack.build(None, state) is None
    assert adapters.matrix.build(None, state, rooms=[], note_prefix="//") is None
    assert adapters.email.build(None, state) is None

    slack = adapters.slack.build(SlackSettings(bot_token=SecretStr("xoxb-1"), signing_secret=SecretStr("s")), state)
    assert slack is not None and slack.endpoint.name == "slack" and slack.routes  # HTTP mode: POST /slack/events
    socket_mode = adapters.slack.build(
        SlackSettings(bot_token=SecretStr("xoxb-1"), app_token=SecretStr("xapp-1")), state
    )
    assert socket_mode is not None and not socket_mode.routes

    matrix_part = MatrixSettings(homeserver="https://m.example", user_id="@b:m.example", password=SecretStr("x"))
    matrix = adapters.matrix.build(matrix_part, state, rooms=["!a:m.example"], note_prefix="%%")
    assert matrix is not None and matrix.endpoint.name == "matrix"

    mail = adapters.email.build(
        EmailSettings(smtp_url=SecretStr("smtp://mail.example"), mail_from="a@b.example"), state
    )
    assert mail is not None and mail.endpoint.name == "email"

"""Which variable fills which setting (the names are CONTRACT.md §2's), and how they are read.

The environment is flat (``SLACK_BOT_TOKEN``, ``SITECHAT_PORT``) while ``Settings`` has one part per side
of the bridge (``settings.slack.bot_token``, ``settings.widget.port``): ``VARIABLES`` is the one table
between the two. ``Settings(...)`` takes the same flat names as keywords, lower case and without
``SITECHAT_`` (``slack_bot_token=``, ``port=``), so code and tests configure it the way an admin does.

Every ``SITECHAT_*`` variable is checked: one that is neither a setting nor in ``TOOLING`` stops the
start like any other bad value, with the nearest known name. Unknown ``SLACK_*``/``MATRIX_*`` variables
are left alone: they may belong to another program on the same machine.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

PREFIX = "SITECHAT_"
SITES = "SITECHAT_SITES"


@dataclass(frozen=True)
class Variable:
    name: str
    #: the part of ``Settings`` it fills (``None``: ``Settings`` itself), and the field there
    part: str | None
    field: str
    #: a right value, shown when the value given is wrong
    example: str | None = None

    @property
    def keyword(self) -> str:
        """The keyword ``Settings(...)`` takes for it: ``SITECHAT_PORT`` → ``port``."""
        return self.name.removeprefix(PREFIX).lower()


VARIABLES: tuple[Variable, ...] = (
    Variable("SITECHAT_DATABASE_URL", None, "database_url", "sqlite+aiosqlite:///./sitechat.db"),
    Variable("SITECHAT_NOTE_PREFIX", None, "note_prefix", "//"),
    Variable("SITECHAT_INACTIVITY_CLOSE_MINUTES", None, "inactivity_close_minutes", "30"),
    Variable("SITECHAT_FIRST_RESPONSE_ALERT_SECONDS", None, "first_response_alert_seconds", "60"),
    Variable("SITECHAT_REMINDER_MAX", None, "reminder_max", "3"),
    Variable("SITECHAT_REMINDER_MENTION", None, "reminder_mention", "here"),
    Variable("SITECHAT_SNIPPETS_FILE", None, "snippets", "/etc/sitechat/snippets.toml"),
    Variable("SITECHAT_SHUTDOWN_SECONDS", None, "shutdown_seconds", "10"),
    Variable("SITECHAT_RETENTION_DAYS", None, "retention_days", "365"),
    Variable("SITECHAT_REPORT_SCHEDULE", None, "report_schedule", "Mon 09:00"),
    Variable("SITECHAT_FOLLOW_UP_MINUTES", None, "follow_up_minutes", "5"),
    Variable("SITECHAT_HOST", "widget", "host", "127.0.0.1"),
    Variable("SITECHAT_PORT", "widget", "port", "8080"),
    Variable("SITECHAT_PUBLIC_URL", "widget", "public_url", "https://chat.acme.example"),
    Variable("SITECHAT_RATE_CONVERSATIONS_PER_HOUR", "widget", "conversations_per_hour", "20"),
    Variable("SITECHAT_RATE_MESSAGES_PER_MINUTE", "widget", "messages_per_minute", "30"),
    Variable("SITECHAT_RATE_SOCKETS_PER_ADDRESS", "widget", "sockets_per_address", "20"),
    Variable("SITECHAT_TRUSTED_PROXIES", "widget", "trusted_proxies", "127.0.0.1,10.0.0.0/8"),
    Variable("SITECHAT_UPLOAD_TYPES", "widget", "upload_types", "image/png,image/jpeg,application/pdf"),
    Variable("SITECHAT_UPLOAD_MAX_MB", "widget", "upload_max_mb", "10"),
    Variable("SITECHAT_ATTACHMENT_LINK_HOURS", "widget", "attachment_link_hours", "24"),
    Variable("SITECHAT_GEOIP_DB", "widget", "geoip_db", "/var/lib/GeoIP/GeoLite2-City.mmdb"),
    Variable("SITECHAT_SMTP_URL", "email", "smtp_url"),
    Variable("SITECHAT_MAIL_FROM", "email", "mail_from", "support@acme.example"),
    Variable("SITECHAT_INBOUND_SMTP", "email", "inbound_smtp", "0.0.0.0:2525"),
    Variable("SITECHAT_INBOUND_DOMAIN", "email", "inbound_domain", "reply.acme.example"),
    Variable("SITECHAT_WEBHOOK_URL", "webhook", "url", "https://crm.acme.example/hooks/sitechat"),
    Variable("SITECHAT_WEBHOOK_SECRET", "webhook", "secret"),
    Variable("SLACK_BOT_TOKEN", "slack", "bot_token", "xoxb-1234-5678-abcd"),
    Variable("SLACK_SIGNING_SECRET", "slack", "signing_secret"),
    Variable("SLACK_APP_TOKEN", "slack", "app_token", "xapp-1-A0123-4567-abcd"),
    Variable("SLACK_API_URL", "slack", "api_url", "https://slack.com/api/"),
    Variable("SLACK_POSTS_PER_SECOND", "slack", "posts_per_second", "1"),
    Variable("MATRIX_HOMESERVER", "matrix", "homeserver", "https://matrix.example.org"),
    Variable("MATRIX_USER_ID", "matrix", "user_id", "@sitechat:example.org"),
    Variable("MATRIX_PASSWORD", "matrix", "password"),
    Variable("MATRIX_ACCESS_TOKEN", "matrix", "access_token"),
    Variable("MATRIX_DEVICE_ID", "matrix", "device_id"),
    Variable("MATRIX_STAFF", "matrix", "staff", "@alice:example.org,:example.org"),
    Variable("MATRIX_STORE_PATH", "matrix", "store_path", "/var/lib/sitechat/matrix-store"),
    Variable("MATRIX_TRUST", "matrix", "trust", "members"),
)
BY_NAME = {v.name: v for v in VARIABLES}
BY_KEYWORD = {v.keyword: v for v in VARIABLES}
BY_FIELD = {(v.part, v.field): v for v in VARIABLES}

#: a part is on when this field of it is set (not empty); the widget server is always on
SWITCHES: dict[str, str | None] = {
    "widget": None,
    "slack": "bot_token",
    "matrix": "homeserver",
    "email": "smtp_url",
    "webhook": "url",
}

#: ``SITECHAT_*`` variables that configure the project's tools, not the service, so a check of the
#: service's configuration lets them be: ``sitechat demo`` (the Synapse virtualenv), the test suite and CI.
TOOLING = frozenset(
    {
        "SITECHAT_SYNAPSE_VENV",  # sitechat demo and the tests: where matrix-synapse is installed
        "SITECHAT_REQUIRE_ALL_COMPONENTS",  # CI: a missing PostgreSQL, Synapse or Chromium fails the run
        "SITECHAT_TEST_OUTAGE_SECONDS",  # tests/faults: how long the Synapse outage lasts
        "SITECHAT_SCREENSHOTS",  # tests/browser: write the screenshots into docs/
        "SITECHAT_FUZZ_EXAMPLES",  # tests/security: how hard the API fuzzer searches
        "SITECHAT_CHROMIUM",  # tests/browser: the Chromium binary
    }
)


def compose(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flat keywords (``slack_bot_token=``) → one dict per part; a team chat's part is ``None`` when off.

    A part may also be given whole (``slack=SlackSettings(...)``); any other keyword passes through, so
    an unknown one is refused by validation (and named, with the nearest known name, by ``describe``).
    """
    data: dict[str, Any] = {}
    parts: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        variable = BY_KEYWORD.get(key.lower())
        if variable is not None and variable.part is not None:
            parts.setdefault(variable.part, {})[variable.field] = value
        else:
            data[variable.field if variable else key] = value
    for part, switch in SWITCHES.items():
        given = parts.get(part, {})
        if part in data:
            if given:
                raise ValueError(f"give {part}= or the {part} keywords ({', '.join(given)}), not both")
            continue
        data[part] = given if switch is None or given.get(switch) not in (None, "") else None
    return data


class ContractVariables(PydanticBaseSettingsSource):
    """The variables, from the env file and the real environment (which wins), as ``Settings`` keywords."""

    def __init__(self, settings_cls: type[BaseSettings], readings: Sequence[Mapping[str, str | None]]) -> None:
        super().__init__(settings_cls)
        self.readings = readings

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ maps names itself

    def __call__(self) -> dict[str, Any]:
        variables: dict[str, str] = {}
        for reading in self.readings:
            variables.update({name.upper(): value for name, value in reading.items() if value is not None})
        return keywords(variables)


def keywords(variables: Mapping[str, str]) -> dict[str, Any]:
    """``{"SITECHAT_PORT": "80", "SITECHAT_SITES__ACME__NAME": "Acme"}`` → ``{"port": "80", "sites": {...}}``.

    An unknown ``SITECHAT_*`` name is kept as it is, so that validation refuses it by that name (and it
    cannot pass for a field that no variable fills, such as ``widget``).
    """
    found: dict[str, Any] = {}
    sites: dict[str, Any] = {}
    for name, value in variables.items():
        if name.startswith(SITES + "__"):
            _put(sites, [part.lower() for part in name.removeprefix(SITES + "__").split("__")], value)
        elif name == SITES:  # the whole block as JSON, as pydantic-settings reads a nested field
            found["sites"] = _json_or_text(value)
        elif name in BY_NAME:
            found[BY_NAME[name].keyword] = value
        elif name.startswith(PREFIX) and name not in TOOLING:
            found[name] = value
    if sites:
        whole = found.get("sites")
        found["sites"] = _merged(whole, sites) if isinstance(whole, dict) else sites
    return found


def _put(tree: dict[str, Any], path: list[str], value: str) -> None:
    """Set ``value`` at ``path``. A name may be both a value and a block — ``…__GREETING`` (one text for
    every language) beside ``…__GREETING__DE`` — in any order: the value is then the block's ``""`` key."""
    for key in path[:-1]:
        below = tree.get(key)
        if not isinstance(below, dict):
            tree[key] = {} if below is None else {"": below}
        tree = tree[key]
    if isinstance(tree.get(path[-1]), dict):
        tree[path[-1]][""] = value
    else:
        tree[path[-1]] = value


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        merged[key] = _merged(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


# -- names for error locations ------------------------------------------------------------------------


def variable_name(loc: Sequence[str | int]) -> str | None:
    """The variable a validation error is about: ("widget", "port") → SITECHAT_PORT; ``None`` for a whole part."""
    if not loc:
        return None
    head = str(loc[0])
    if head.startswith(PREFIX):  # an unknown variable, kept by its name
        return head
    if head == "sites":
        return "__".join([SITES, *(str(p).upper() for p in loc[1:])])
    if head in SWITCHES:
        variable = BY_FIELD.get((head, str(loc[1]))) if len(loc) > 1 else None
        return variable.name if variable else None
    variable = BY_FIELD.get((None, head))
    return variable.name if variable else PREFIX + head.upper()


def unknown(loc: Sequence[str | int], known_here: Sequence[str]) -> str:
    """The line for a name that is no setting, with the nearest of the names ``known_here`` (its block's)."""
    if len(loc) <= 1:
        name = variable_name(loc) or "configuration"
        suggestion = _near_variable(name)
    else:  # a key inside a block: a site's, a topic's, or a part given whole in code
        in_sites = loc[0] == "sites"
        name = (variable_name(loc) if in_sites else None) or ".".join(map(str, loc))
        last = str(loc[-1])
        spelt = [k.upper() if in_sites else k for k in known_here]
        near = difflib.get_close_matches(last.upper() if in_sites else last, spelt, n=1)
        suggestion = name[: len(name) - len(last)] + near[0] if near else None
    if suggestion:
        return f"{name}: unknown setting; did you mean {suggestion}?"
    return f"{name}: unknown setting; README.md (Configuration) lists every name"


def _near_variable(name: str) -> str | None:
    rest = name.removeprefix(PREFIX)
    head, sep, tail = rest.partition("__")
    if sep and difflib.get_close_matches(head, ["SITES"], n=1):
        return f"{SITES}__{tail}"
    ours = {v.name.removeprefix(PREFIX): v.name for v in VARIABLES if v.name.startswith(PREFIX)}
    near = difflib.get_close_matches(rest, list(ours), n=1)
    return ours[near[0]] if near else None

"""Turn the environment (and an env file) into ``Settings``, or into plain-language problems."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.settings import Settings

EXAMPLES = {
    "database_url": "sqlite+aiosqlite:///./sitechat.db",
    "port": "8080",
    "public_url": "https://chat.acme.example",
    "inactivity_close_minutes": "30",
    "first_response_alert_seconds": "60",
    "rate_conversations_per_hour": "20",
    "rate_messages_per_minute": "30",
    "rate_sockets_per_address": "20",
    "origins": "https://acme.example,https://www.acme.example",
    "office_hours": "Mon-Fri 09:00-17:00 Europe/Berlin",
    "slack_channel": "C0123ABCD",
    "matrix_room": "!abcdef:example.org",
    "name": "Acme Inc.",
    "label": "Sales",
    "SLACK_BOT_TOKEN": "xoxb-1234-5678-abcd",
    "SLACK_APP_TOKEN": "xapp-1-A0123-4567-abcd",
    "SLACK_API_URL": "https://slack.com/api/",
    "MATRIX_HOMESERVER": "https://matrix.example.org",
}


SECRET_WORDS = ("secret", "token", "password")
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


class ConfigError(Exception):
    """Bad configuration: one plain message per problem, no traceback for the admin."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def env_name(loc: tuple[Any, ...]) -> str:
    """The variable an error location came from: ("sites", "acme", "origins") → SITECHAT_SITES__ACME__ORIGINS."""
    if not loc:
        return "configuration"
    head = str(loc[0])
    if head.isupper():  # fields read from an unprefixed variable carry their alias (SLACK_BOT_TOKEN)
        return head
    return "SITECHAT_" + "__".join(str(part).upper() for part in loc)


def describe(error: Mapping[str, Any]) -> str:
    loc = tuple(p for p in error.get("loc", ()) if not str(p).startswith("function-"))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    name = env_name(loc)
    example = EXAMPLES.get(str(loc[-1])) if loc else None
    given = error.get("input")
    if error.get("type") == "missing":
        text = f"{name}: missing"
    elif loc and isinstance(given, str | int | float) and not any(w in name.lower() for w in SECRET_WORDS):
        shown = _USERINFO.sub("…@", given) if isinstance(given, str) else given  # a URL's password stays unsaid
        text = f"{name}: {message} (got {shown!r})"
    else:
        text = f"{name}: {message}"
    if example and example not in text:
        text += f"; for example {name}={example}"
    return text


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings; ``env_file`` defaults to ``.env`` here if present. Environment variables win over it."""
    path = env_file if env_file is not None else Path(".env")
    if env_file is not None and not env_file.is_file():
        raise ConfigError([f"--env-file: {env_file} does not exist or is not a file"])
    try:
        return Settings(_env_file=path if path.is_file() else None, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            problems.extend(describe({**err, "msg": part}) for part in str(err.get("msg", "")).split("; "))
        raise ConfigError(problems) from None

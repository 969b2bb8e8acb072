"""Turn the environment (and an env file) into ``Settings``, or into plain-language problems."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from config import parts
from config.settings import Settings
from config.sites import SiteConfig, TopicConfig
from config.variables import BY_FIELD, BY_NAME, SWITCHES, unknown, variable_name

#: right values for a site's and a topic's keys (the other variables carry theirs in config/variables.py)
SITE_EXAMPLES = {
    "origins": "https://acme.example,https://www.acme.example",
    "office_hours": "Mon-Fri 09:00-17:00 Europe/Berlin",
    "slack_channel": "C0123ABCD",
    "matrix_room": "!abcdef:example.org",
    "name": "Acme Inc.",
    "label": "Sales",
}
PARTS: dict[str, type[BaseModel]] = {
    "widget": parts.WidgetSettings,
    "slack": parts.SlackSettings,
    "matrix": parts.MatrixSettings,
    "email": parts.EmailSettings,
}

SECRET_WORDS = ("secret", "token", "password", "smtp_url")
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


class ConfigError(Exception):
    """Bad configuration: one plain message per problem, no traceback for the admin."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def describe(error: Mapping[str, Any]) -> list[str]:
    """One line per problem in a validation error, each naming its variable (a validator may find several,
    one per line of its message)."""
    loc = tuple(p for p in error.get("loc", ()) if not str(p).startswith("function-"))
    if error.get("type") == "extra_forbidden":
        return [unknown(loc, _known_at(loc[:-1]))]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return [_line(loc, part, error) for part in message.split("\n")]


def _line(loc: tuple[Any, ...], message: str, error: Mapping[str, Any]) -> str:
    name = variable_name(loc)
    if name is None:  # about a whole part, or the whole: the message names its variables itself
        return message
    variable = BY_NAME.get(name)
    example = variable.example if variable else SITE_EXAMPLES.get(str(loc[-1]))
    given = error.get("input")
    if error.get("type") == "missing":
        switch = SWITCHES.get(str(loc[0])) if len(loc) == 2 else None
        text = f"{name} is needed with {BY_FIELD[str(loc[0]), switch].name}" if switch else f"{name}: missing"
    elif isinstance(given, str | int | float) and not any(w in name.lower() for w in SECRET_WORDS):
        shown = _USERINFO.sub("…@", given) if isinstance(given, str) else given  # a URL's password stays unsaid
        text = f"{name}: {message}" if str(shown) in message else f"{name}: {message} (got {shown!r})"
    else:
        text = f"{name}: {message}"
    if example and example not in text:
        text += f"; for example {name}={example}"
    return text


def _known_at(block: Sequence[Any]) -> list[str]:
    """The names allowed inside ``block`` (a location): a site's keys, a topic's, a part's fields."""
    if not block:
        return []
    if block[0] == "sites":
        model: type[BaseModel] = TopicConfig if len(block) >= 4 else SiteConfig
        return list(model.model_fields)
    return list(PARTS[block[0]].model_fields) if block[0] in PARTS else []


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings; ``env_file`` defaults to ``.env`` here if present. Environment variables win over it."""
    path = env_file if env_file is not None else Path(".env")
    if env_file is not None and not env_file.is_file():
        raise ConfigError([f"--env-file: {env_file} does not exist or is not a file"])
    try:
        return Settings(_env_file=path if path.is_file() else None, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError([line for err in exc.errors() for line in describe(err)]) from None

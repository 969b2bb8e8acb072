"""Saved replies (``!s NAME``) from SITECHAT_SNIPPETS_FILE: TOML, or YAML with the same shape.

Read with the rest of the settings, so a file that is missing or malformed stops the start with one line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

EXAMPLE = 'hello = "Hi! How can I help?"'


def load_snippets(path: Path) -> dict[str, str]:
    """Name → text; a ``ValueError`` that says in one line what is wrong with the file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path} ({exc.strerror})") from None
    data: Any
    if path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path} is not valid YAML: {_one_line(exc)}") from None
        data = {} if data is None else data  # an empty file: no snippets yet
    else:
        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path} is not valid TOML: {_one_line(exc)}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{path} must map names to texts, e.g. {EXAMPLE}")
    return {name.strip(): text for name, text in data.items()}


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())

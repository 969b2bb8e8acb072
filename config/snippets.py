"""Saved replies (``!s NAME``) from SITECHAT_SNIPPETS_FILE: TOML, or YAML with the same shape."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml


def load_snippets(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"SITECHAT_SNIPPETS_FILE: cannot read {path} ({exc.strerror})") from None
    try:
        data = yaml.safe_load(raw) if path.suffix in (".yaml", ".yml") else tomllib.loads(raw)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"SITECHAT_SNIPPETS_FILE: {path} is not valid: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f'SITECHAT_SNIPPETS_FILE: {path} must map names to texts, e.g. hello = "Hi! How can I help?"')
    return {k.strip(): v for k, v in data.items()}

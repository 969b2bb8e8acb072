"""The core stays free of protocol SDKs, the web framework and the composition root (DESIGN.md), no exception."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("slack_sdk", "slack_bolt", "nio", "aiohttp", "adapters", "widget_server", "sitechat")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_imports_no_protocol_sdk_web_app_or_composition_root() -> None:
    offenders = []
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for name in _imports(path):
            if name.split(".")[0] in FORBIDDEN:
                offenders.append(f"{rel} imports {name}")
    assert not offenders, offenders


def test_the_rule_would_catch_an_offender(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("from slack_sdk.web import WebClient\nimport aiohttp.web\n")
    assert {n.split(".")[0] for n in _imports(sample)} == {"slack_sdk", "aiohttp"}

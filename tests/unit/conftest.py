"""Fixtures of the unit layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness import OUR_VARIABLES

#: a good configuration: one site routed to Slack
SITE = {
    "SITECHAT_SITES__ACME__NAME": "Acme",
    "SITECHAT_SITES__ACME__ORIGINS": "https://acme.example",
    "SITECHAT_SITES__ACME__SLACK_CHANNEL": "C0SUPPORT",
    "SLACK_BOT_TOKEN": "xoxb-1-2-3",
    "SLACK_SIGNING_SECRET": "secret",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A good configuration in the environment, nothing else of ours; the working directory has no .env."""
    for key in [k for k in os.environ if k.upper().startswith(OUR_VARIABLES)]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    for key, value in SITE.items():
        monkeypatch.setenv(key, value)
    return monkeypatch

"""Configuration: the contract's names, and one plain message per problem (never a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.loading import ConfigError, load_settings
from config.office_hours import OfficeHours
from tests.harness import OUR_VARIABLES, clean_environment

GOOD = {
    "SITECHAT_SITES__ACME__NAME": "Acme",
    "SITECHAT_SITES__ACME__ORIGINS": "https://acme.example, https://www.acme.example",
    "SITECHAT_SITES__ACME__SLACK_CHANNEL": "C0SUPPORT",
    "SITECHAT_SITES__ACME__TOPICS__SALES__LABEL": "Sales",
    "SITECHAT_SITES__ACME__TOPICS__SALES__SLACK_CHANNEL": "C0SALES",
    "SITECHAT_SITES__ACME__OFFICE_HOURS": "Mon-Fri 09:00-17:00 Europe/Berlin",
    "SLACK_BOT_TOKEN": "xoxb-1-2-3",
    "SLACK_SIGNING_SECRET": "secret",
    "SITECHAT_INACTIVITY_CLOSE_MINUTES": "0.1",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for key in list(os.environ):
        if key.startswith(OUR_VARIABLES):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    for key, value in GOOD.items():
        monkeypatch.setenv(key, value)
    return GOOD


def test_reads_the_contract_names(env: dict[str, str]) -> None:
    s = load_settings()
    site = s.sites["acme"]
    assert site.origins == ["https://acme.example", "https://www.acme.example"]
    assert site.destinations(None) == {"slack": "C0SUPPORT"}
    assert site.destinations("sales") == {"slack": "C0SALES"}
    assert site.topics["sales"].label == "Sales"
    assert s.inactivity_close_minutes == 0.1
    assert s.slack is not None and "xoxb" not in repr(s)  # secrets never print


def test_env_file_is_read_and_real_environment_wins(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "other.env").write_text("SITECHAT_PORT=9999\nSITECHAT_HOST=0.0.0.0\n")
    monkeypatch.setenv("SITECHAT_HOST", "127.0.0.2")
    s = load_settings(tmp_path / "other.env")
    assert (s.widget.port, s.widget.host) == (9999, "127.0.0.2")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"SITECHAT_SITES__ACME__ORIGINS": "acme.example"},
            "SITECHAT_SITES__ACME__ORIGINS: 'acme.example' is not an origin",
        ),
        ({"SITECHAT_PORT": "eighty"}, "SITECHAT_PORT: Input should be a valid integer"),
        ({"SLACK_BOT_TOKEN": "abc"}, "SLACK_BOT_TOKEN: a bot token starts with xoxb-"),
        ({"SLACK_SIGNING_SECRET": None}, "SLACK_SIGNING_SECRET is needed in HTTP mode"),
        ({"SITECHAT_SITES__ACME__OFFICE_HOURS": "weekdays"}, "SITECHAT_SITES__ACME__OFFICE_HOURS"),
        (
            {"SITECHAT_SITES__ACME__SLACK_CHANNEL": None, "SITECHAT_SITES__ACME__TOPICS__SALES__SLACK_CHANNEL": None},
            "the site has no destination",
        ),
        ({"SITECHAT_SITES__ACME__MATRIX_ROOM": "!r:example.org"}, "MATRIX_HOMESERVER is not set"),
        ({"SITECHAT_DATABASE_URL": "mysql://x"}, "SITECHAT_DATABASE_URL: use sqlite+aiosqlite"),
    ],
)
def test_each_problem_is_named(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, changes: dict, expected: str
) -> None:
    for key, value in changes.items():
        if value is None:
            monkeypatch.delenv(key)
        else:
            monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_office_hours() -> None:
    from datetime import UTC, datetime

    hours = OfficeHours.parse("Mon-Fri 09:00-17:00 Europe/Berlin")
    assert hours.is_open(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))  # Tuesday 11:00 in Berlin
    assert not hours.is_open(datetime(2026, 11, 24, 16, 30, tzinfo=UTC))  # 17:30 in Berlin
    assert not hours.is_open(datetime(2026, 11, 28, 10, 0, tzinfo=UTC))  # Saturday
    with pytest.raises(ValueError, match="unknown time zone"):
        OfficeHours.parse("Mon-Fri 09:00-17:00 Mars/Olympus")


def test_run_with_bad_config_prints_problems_and_no_traceback(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("SITECHAT_SITES__ACME__NAME=Acme\nSITECHAT_SITES__ACME__ORIGINS=nope\nSITECHAT_PORT=x\n")
    clean = clean_environment()
    result = subprocess.run(
        [sys.executable, "-m", "sitechat", "run", "--env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "SITECHAT_SITES__ACME__ORIGINS" in result.stderr and "SITECHAT_PORT" in result.stderr
    assert "for example" in result.stderr


def test_run_stops_at_start_on_names_and_files_it_cannot_use(tmp_path: Path) -> None:
    """A misspelt variable, a snippets file that is not there, a proxy that is not an address: each is one line
    before anything starts, like any other configuration problem (the snippets file used to be a traceback)."""
    env_file = tmp_path / "typos.env"
    env_file.write_text(
        "SITECHAT_SITES__ACME__NAME=Acme\n"
        "SITECHAT_SITES__ACME__ORIGINS=https://acme.example\n"
        "SITECHAT_SITES__ACME__SLACK_CHANNEL=C0SUPPORT\n"
        "SLACK_BOT_TOKEN=xoxb-1-2-3\n"
        "SLACK_SIGNING_SECRET=secret\n"
        f"SITECHAT_DATABASE_URL=sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}\n"
        "SITECHAT_INACTIVTY_CLOSE_MINUTES=5\n"
        "SITECHAT_SNIPPETS_FILE=nowhere.toml\n"
        "SITECHAT_TRUSTED_PROXIES=10.0.0.0/8,proxy.internal\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sitechat", "run", "--env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environment(),
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line.removeprefix("  - ") for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(lines) == 3, result.stderr
    assert "SITECHAT_INACTIVTY_CLOSE_MINUTES: unknown setting; did you mean SITECHAT_INACTIVITY_CLOSE_MINUTES?" in lines
    assert any(line.startswith("SITECHAT_SNIPPETS_FILE: cannot read nowhere.toml") for line in lines), lines
    assert any(line.startswith("SITECHAT_TRUSTED_PROXIES: 'proxy.internal'") for line in lines), lines


def test_second_instance_on_one_sqlite_file_refuses(tmp_path: Path) -> None:
    from bridge.store.database import Database, DatabaseInUse

    first = Database(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    first.claim_single_instance()
    second = Database(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    with pytest.raises(DatabaseInUse, match="another sitechat instance"):
        second.claim_single_instance()

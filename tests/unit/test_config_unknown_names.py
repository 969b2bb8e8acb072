"""A misspelt name stops the start, whether it is a variable or a site's key, and says the right one."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.loading import ConfigError, load_settings
from config.settings import Settings


def problems() -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return caught.value.problems


# a variable that is set → the one line that says so
MISSPELT: dict[str, str] = {
    "SITECHAT_INACTIVTY_CLOSE_MINUTES": "SITECHAT_INACTIVTY_CLOSE_MINUTES: unknown setting; "
    "did you mean SITECHAT_INACTIVITY_CLOSE_MINUTES?",
    "SITECHAT_RATE_MESAGES_PER_MINUTE": "SITECHAT_RATE_MESAGES_PER_MINUTE: unknown setting; "
    "did you mean SITECHAT_RATE_MESSAGES_PER_MINUTE?",
    "SITECHAT_PUBLICURL": "SITECHAT_PUBLICURL: unknown setting; did you mean SITECHAT_PUBLIC_URL?",
    "sitechat_note_prefx": "SITECHAT_NOTE_PREFX: unknown setting; did you mean SITECHAT_NOTE_PREFIX?",
    # a site's keys, a topic's keys, and the block name itself
    "SITECHAT_SITES__ACME__GRETING": "SITECHAT_SITES__ACME__GRETING: unknown setting; "
    "did you mean SITECHAT_SITES__ACME__GREETING?",
    "SITECHAT_SITES__ACME__TOPICS__SALES__SLACK_CHANEL": "SITECHAT_SITES__ACME__TOPICS__SALES__SLACK_CHANEL: "
    "unknown setting; did you mean SITECHAT_SITES__ACME__TOPICS__SALES__SLACK_CHANNEL?",
    "SITECHAT_SITE__ACME__GREETING": "SITECHAT_SITE__ACME__GREETING: unknown setting; "
    "did you mean SITECHAT_SITES__ACME__GREETING?",
    # nothing near it
    "SITECHAT_COLOUR": "SITECHAT_COLOUR: unknown setting; README.md (Configuration) lists every name",
}


@pytest.mark.parametrize("name", list(MISSPELT))
def test_a_misspelt_variable_is_named_with_the_nearest_known_one(env: pytest.MonkeyPatch, name: str) -> None:
    env.setenv("SITECHAT_SITES__ACME__TOPICS__SALES__LABEL", "Sales")
    env.setenv(name, "5")
    assert problems() == [MISSPELT[name]]


def test_the_env_file_is_checked_too(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SITECHAT_FIRST_RESPONSE_ALERT_SECOND=30\n")
    assert problems() == [
        "SITECHAT_FIRST_RESPONSE_ALERT_SECOND: unknown setting; did you mean SITECHAT_FIRST_RESPONSE_ALERT_SECONDS?"
    ]


def test_it_is_one_problem_among_the_others(env: pytest.MonkeyPatch) -> None:
    env.setenv("SITECHAT_PORT", "eighty")
    env.setenv("SITECHAT_HOTS", "0.0.0.0")
    found = problems()
    assert len(found) == 2, found
    assert any(p.startswith("SITECHAT_PORT: ") for p in found)
    assert "SITECHAT_HOTS: unknown setting; did you mean SITECHAT_HOST?" in found


@pytest.mark.parametrize(
    "name",
    [
        # the test harness, CI and `sitechat demo` read these; they configure tools, not the service
        "SITECHAT_SYNAPSE_VENV",
        "SITECHAT_REQUIRE_ALL_COMPONENTS",
        "SITECHAT_TEST_OUTAGE_SECONDS",
        "SITECHAT_SCREENSHOTS",
        "SITECHAT_FUZZ_EXAMPLES",
        "SITECHAT_CHROMIUM",
        # an unknown SLACK_* or MATRIX_* may well belong to another program
        "SLACK_CLIENT_ID",
        "MATRIX_SYNAPSE_PORT",
    ],
)
def test_names_that_are_not_ours_to_judge_pass(env: pytest.MonkeyPatch, name: str) -> None:
    env.setenv(name, "1")
    assert load_settings().sites["acme"].name == "Acme"


def test_a_misspelt_keyword_is_refused_in_code_too() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="rate_mesages_per_minute"):
        Settings(_env_file=None, rate_mesages_per_minute=3)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ["SITECHAT_WIDGET", "SITECHAT_SLACK", "SITECHAT_SNIPPETS"])
def test_a_name_like_an_inner_field_is_no_variable(env: pytest.MonkeyPatch, name: str) -> None:
    env.setenv(name, "x")
    assert problems()[0].startswith(f"{name}: unknown setting")

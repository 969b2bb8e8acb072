"""SITECHAT_INBOUND_SMTP, SITECHAT_INBOUND_DOMAIN and SITECHAT_FOLLOW_UP_MINUTES: what is refused at start, in
one line naming the variable."""

from __future__ import annotations

import pytest

from config.loading import ConfigError, load_settings

EMAIL = {"SITECHAT_SMTP_URL": "smtp://mail.example:587", "SITECHAT_MAIL_FROM": "help@acme.example"}
INBOUND = {"SITECHAT_INBOUND_SMTP": "0.0.0.0:2525", "SITECHAT_INBOUND_DOMAIN": "reply.acme.example"}

# the variables set → what the one problem line says
BAD: dict[str, tuple[dict[str, str], str]] = {
    "replies without an SMTP server": (
        INBOUND,
        "SITECHAT_INBOUND_SMTP and SITECHAT_INBOUND_DOMAIN need SITECHAT_SMTP_URL",
    ),
    "a domain without a listener": (
        EMAIL | {"SITECHAT_INBOUND_DOMAIN": "reply.acme.example"},
        "SITECHAT_INBOUND_SMTP and SITECHAT_INBOUND_DOMAIN go together",
    ),
    "a listener without a domain": (
        EMAIL | {"SITECHAT_INBOUND_SMTP": "0.0.0.0:2525"},
        "SITECHAT_INBOUND_SMTP and SITECHAT_INBOUND_DOMAIN go together",
    ),
    "no port": (EMAIL | INBOUND | {"SITECHAT_INBOUND_SMTP": "0.0.0.0"}, "SITECHAT_INBOUND_SMTP: must be host:port"),
    "a port out of range": (
        EMAIL | INBOUND | {"SITECHAT_INBOUND_SMTP": "h:70000"},
        "SITECHAT_INBOUND_SMTP: must be host:port",
    ),
    "a domain that is no domain": (
        EMAIL | INBOUND | {"SITECHAT_INBOUND_DOMAIN": "reply_acme"},
        "SITECHAT_INBOUND_DOMAIN: must be a mail domain",
    ),
    "negative minutes": (EMAIL | {"SITECHAT_FOLLOW_UP_MINUTES": "-1"}, "SITECHAT_FOLLOW_UP_MINUTES: "),
}


@pytest.mark.parametrize(("variables", "expected"), BAD.values(), ids=BAD.keys())
def test_refused_at_start(env: pytest.MonkeyPatch, variables: dict[str, str], expected: str) -> None:
    for name, value in variables.items():
        env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert len(caught.value.problems) == 1, caught.value.problems
    assert expected in caught.value.problems[0], caught.value.problems


def test_the_defaults_and_decimals(env: pytest.MonkeyPatch) -> None:
    assert load_settings().follow_up_minutes == 5
    for name, value in (EMAIL | INBOUND | {"SITECHAT_FOLLOW_UP_MINUTES": "0.25"}).items():
        env.setenv(name, value)
    settings = load_settings()
    assert settings.follow_up_minutes == 0.25
    assert settings.email is not None and settings.email.inbound_smtp == ("0.0.0.0", 2525)

"""Secrets stay secret: not in logs, not in reprs, and the env file that holds them is not left readable."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from config.settings import Settings
from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, message_event, signed_json
from tests.fakes.smtp import Inbox
from tests.harness import OUR_VARIABLES, Visitor, free_port, root_of, run_sitechat, wait_until

BOT_TOKEN = "xoxb-SECRET-bot-7f3a9c"
SIGNING = "SECRET-signing-51e2"
SMTP_PASSWORD = "SECRET-smtp-pw-c0ffee"
IDENTITY = "SECRET-identity-d00d"
SECRETS = (BOT_TOKEN, SIGNING, SMTP_PASSWORD, IDENTITY)


async def test_secrets_never_reach_the_logs_or_a_repr(
    make_bridge: BridgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    smtp = Controller(Inbox(), hostname="127.0.0.1", port=free_port())  # takes no login: every mail fails
    smtp.start()
    try:
        async with FakeSlack(bot_token=BOT_TOKEN) as slack:
            bridge = await make_bridge(
                slack,
                slack_signing_secret=SIGNING,
                smtp_url=f"smtp://support:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}",
                mail_from="help@acme.example",
                site={"identity_secret": IDENTITY},
            )
            settings = bridge.settings
            for text in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.sites)):
                assert not [s for s in SECRETS if s in text], text
            visitor = Visitor(bridge.url)
            try:
                await visitor.start(visitor={"name": "Ann", "id": "cust-1", "hash": "0" * 64})
                root = await slack.wait_for(lambda: root_of(slack), message="thread root")
                await visitor.say("hello", "s1")
                event = event_callback(message_event("C0SUPPORT", "UAGENT", "hi!", thread_ts=root["ts"]))
                body, headers = signed_json(SIGNING, event)
                async with visitor.session.post(f"{bridge.url}/slack/events", data=body, headers=headers) as response:
                    assert response.status == 200
                async with visitor.session.post(
                    f"{bridge.url}/slack/events", data=b"{}", headers=signed_json("wrong", event)[1]
                ) as response:
                    assert response.status == 401
                await wait_until(lambda: _count(visitor, 2), what="the reply")
                base = f"/api/v1/conversations/{visitor.conversation_id}"
                status, _, _ = await visitor.request("POST", f"{base}/transcript", {"email": "ann@example.com"})
                assert status == 202
                await visitor.request("POST", f"{base}/close")
                # the mail fails (the server takes no login): the failure is logged, the password is not
                await wait_until(
                    lambda: [r for r in caplog.records if r.name.startswith("bridge") and "email" in r.getMessage()],
                    timeout=15,
                    what="the mail failure to be logged",
                )
            finally:
                await visitor.close()
            await bridge.stop()
    finally:
        smtp.stop()
    assert caplog.records
    leaked = [s for s in SECRETS if s in caplog.text]
    assert not leaked, f"in the logs: {leaked}"
    for record in caplog.records:
        assert not [s for s in SECRETS if s in record.getMessage() or s in str(record.exc_text or "")]


async def _count(visitor: Visitor, n: int) -> bool:
    return len((await visitor.messages())["messages"]) >= n


def test_settings_hold_secrets_as_secretstr() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING,
        smtp_url=f"smtp://u:{SMTP_PASSWORD}@mail.example:587",
        mail_from="help@acme.example",
        matrix_homeserver="https://matrix.example.org",
        matrix_user_id="@bot:example.org",
        matrix_password="SECRET-matrix-pw",
        sites={
            "acme": {
                "name": "Acme",
                "origins": ["https://acme.example"],
                "slack_channel": "C0",
                "identity_secret": IDENTITY,
            }
        },
    )
    shown = repr(settings) + str(settings.model_dump()) + settings.model_dump_json()
    for secret in (*SECRETS, "SECRET-matrix-pw"):
        assert secret not in shown, secret
    assert settings.slack is not None and settings.slack.bot_token.get_secret_value() == BOT_TOKEN


def _env_file(tmp_path: Path, slack: FakeSlack, mode: int) -> Path:
    path = tmp_path / "sitechat.env"
    path.write_text(
        f"SLACK_BOT_TOKEN={slack.bot_token}\n"
        f"SLACK_SIGNING_SECRET={SIGNING}\n"
        f"SLACK_API_URL={slack.api_url}\n"
        "SITECHAT_SITES__ACME__NAME=Acme\n"
        "SITECHAT_SITES__ACME__ORIGINS=https://acme.example\n"
        "SITECHAT_SITES__ACME__SLACK_CHANNEL=C0SUPPORT\n"
        f"SITECHAT_DATABASE_URL=sqlite+aiosqlite:///{tmp_path / 'doctor.db'}\n"
    )
    path.chmod(mode)
    return path


async def _doctor(env_file: Path) -> tuple[int, str]:
    return await run_sitechat("doctor", "--env-file", str(env_file), cwd=env_file.parent)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
async def test_doctor_warns_about_an_env_file_others_can_read(tmp_path: Path, fake_slack: FakeSlack, mode: int) -> None:
    env_file = _env_file(tmp_path, fake_slack, mode)
    code, out = await _doctor(env_file)
    assert code == 1, out
    assert str(env_file) in out and "chmod 600" in out, out
    assert SIGNING not in out and fake_slack.bot_token not in out


async def test_doctor_is_content_with_a_private_env_file(tmp_path: Path, fake_slack: FakeSlack) -> None:
    code, out = await _doctor(_env_file(tmp_path, fake_slack, 0o600))
    assert "chmod" not in out and "readable" not in out, out
    assert code == 0, out


def test_a_configuration_error_does_not_print_the_password_it_rejects(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from config.loading import ConfigError, load_settings

    monkeypatch.chdir(tmp_path)  # no .env from the working tree

    for name in [k for k in os.environ if k.startswith(OUR_VARIABLES)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SITECHAT_DATABASE_URL", "postgres://sitechat:SECRET-db-pw@db.internal/sitechat")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    shown = "\n".join(caught.value.problems)
    assert "SITECHAT_DATABASE_URL" in shown
    assert "SECRET-db-pw" not in shown, shown

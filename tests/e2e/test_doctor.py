"""`sitechat doctor`: exit 0 only when all is well, and plain words when it is not."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.slack_api import FakeSlack
from tests.harness import ORIGIN, SIGNING_SECRET, run_sitechat


def _env(tmp_path: Path, slack: FakeSlack, channel: str) -> Path:
    env_file = tmp_path / "site.env"
    env_file.write_text(
        "\n".join(
            [
                f"SITECHAT_DATABASE_URL=sqlite+aiosqlite:///{tmp_path}/doctor.db",
                "SLACK_BOT_TOKEN=xoxb-test",
                f"SLACK_SIGNING_SECRET={SIGNING_SECRET}",
                f"SLACK_API_URL={slack.api_url}",
                "SITECHAT_SITES__ACME__NAME=Acme",
                f"SITECHAT_SITES__ACME__ORIGINS={ORIGIN}",
                f"SITECHAT_SITES__ACME__SLACK_CHANNEL={channel}",
            ]
        )
    )
    env_file.chmod(0o600)
    return env_file


async def test_doctor_all_well_then_a_missing_channel(tmp_path: Path, fake_slack: FakeSlack) -> None:
    code, out = await run_sitechat("doctor", "--env-file", str(_env(tmp_path, fake_slack, "C0SUPPORT")), cwd=tmp_path)
    assert code == 0, out
    assert "All is well." in out and "slack: connected" in out
    code, out = await run_sitechat("doctor", "--env-file", str(_env(tmp_path, fake_slack, "C0GONE")), cwd=tmp_path)
    assert code == 1, out
    assert "C0GONE" in out and "channel_not_found" in out and "Traceback" not in out

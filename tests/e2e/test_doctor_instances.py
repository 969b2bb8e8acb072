"""``sitechat doctor`` on several instances: who runs, their clocks, whether they hear each other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import ORIGIN, SIGNING_SECRET, run_sitechat, wait_until


def _env(tmp_path: Path, slack: FakeSlack, database_url: str) -> Path:
    env_file = tmp_path / "site.env"
    lines = [
        f"SITECHAT_DATABASE_URL={database_url}",
        "SLACK_BOT_TOKEN=xoxb-test",
        f"SLACK_SIGNING_SECRET={SIGNING_SECRET}",
        f"SLACK_API_URL={slack.api_url}",
        "SITECHAT_SITES__ACME__NAME=Acme",
        f"SITECHAT_SITES__ACME__ORIGINS={ORIGIN}",
        "SITECHAT_SITES__ACME__SLACK_CHANNEL=C0SUPPORT",
    ]
    env_file.write_text("\n".join(lines))
    env_file.chmod(0o600)
    return env_file


async def test_doctor_lists_the_instances_and_a_skewed_clock(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, postgres_url: str, tmp_path: Path
) -> None:
    a = await make_bridge(fake_slack, database_url=postgres_url)
    b = await make_bridge(fake_slack, database_url=postgres_url)
    assert a.runtime is not None and b.runtime is not None
    ids = {a.runtime.db.instance, b.runtime.db.instance}
    env_file = _env(tmp_path, fake_slack, postgres_url)
    admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:

        async def heartbeats() -> bool:
            return {r["id"] for r in await admin.fetch("SELECT id FROM instance")} >= ids

        await wait_until(heartbeats, what="both heartbeats")
        code, out = await run_sitechat("doctor", "--env-file", str(env_file), cwd=tmp_path)
        assert code == 0, out
        for instance in ids:
            assert f"instance {instance}:" in out and "sending" in out, out
        assert "outbox:" in out and "Traceback" not in out

        # an instance whose clock runs 30 s ahead of the database's
        now = datetime.now(UTC)
        await admin.execute(
            "INSERT INTO instance (id, host, pid, started_at, heartbeat_at, seen_at, listening) "
            "VALUES ('skewed', 'elsewhere', 1, $1, $2, now(), false)",
            now,
            now + timedelta(seconds=30),
        )
        code, out = await run_sitechat("doctor", "--env-file", str(env_file), cwd=tmp_path)
        assert code == 1, out
        assert "instance skewed: its clock is +30" in out, out
        assert "instance skewed: does not hear the other instances" in out, out
    finally:
        await admin.close()

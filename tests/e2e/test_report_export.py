"""``sitechat report`` and ``sitechat export`` (CONTRACT §9) as an admin runs them, on a seeded database of
each backend: the PNG is a real picture, stdout and the exported rows say exactly what was seeded."""

from __future__ import annotations

import csv
import io
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
from matplotlib import image

from bridge.store.database import Database
from bridge.store.export import COLUMNS, export_rows
from tests.harness import ORIGIN, SIGNING_SECRET, run_sitechat
from tests.seeding import Said, Seeded, seed

NOW = datetime.now(UTC).replace(microsecond=0)


def ago(hours: float, seconds: float = 0) -> datetime:
    return NOW - timedelta(hours=hours) + timedelta(seconds=seconds)


def chat(cid: str, hours: float, *lines: tuple[str, str, float], **kw: Any) -> Seeded:
    said = tuple(Said(role, name, f"{name} says {role} things", ago(hours, s)) for role, name, s in lines)
    return Seeded(cid, ago(hours), messages=said, **kw)


def seeded() -> list[Seeded]:
    return [
        chat(
            "r1",
            30,
            ("visitor", "Ann", 5),
            ("agent", "Alice", 35),
            ("visitor", "Ann", 50),
            ("agent", "Bob", 80),
            closed_at=ago(29),
            rating=5,
            comment="Great",
            pages=("https://acme.example/", "https://acme.example/p"),
        ),
        chat(
            "r2",
            50,
            ("visitor", "Ben", 0),
            ("agent", "Alice", 120),
            closed_at=ago(49),
            rating=2,
            comment="Too slow",
            topic="sales",
            visitor_name="Ben",
            visitor_email=None,
        ),
        chat(
            "r3",
            70,
            ("visitor", "Cai", 0),
            ("system", "Acme", 10),
            ("agent", "Bob", 45),
            visitor_name='Cai, "the" tester',
            visitor_email="cai@example.com",
        ),
        chat("r4", 90, ("visitor", "Dee", 0), closed_at=ago(89), rating=1, visitor_name="Dee"),
        chat(
            "r5",
            100,
            ("visitor", "Eve", 0),
            ("agent", "Alice", 60),
            (
                "visitor",
                "Eve",
                70,
            ),
            closed_at=ago(99),
            rating=4,
            visitor_name="Eve",
            visitor_email="eve@example.com",
        ),
        chat(
            "r6",
            110,
            ("visitor", "Fay", 0),
            (
                "agent",
                "Alice",
                20,
            ),
            closed_at=ago(109),
            visitor_name="Fay",
        ),
        Seeded(
            "off1",
            ago(20),
            kind="offline",
            closed_at=ago(20),
            visitor_name="Gus",
            messages=(Said("system", "Acme", "Offline message", ago(20)),),
        ),
        chat("old", 24 * 40, ("visitor", "Old", 0), ("agent", "Alice", 30), closed_at=ago(24 * 40 - 1)),
        chat("beta1", 10, ("visitor", "Hal", 0), site="beta"),
    ]


# what the export must say about each seeded chat of acme in the last 30 days, newest last
EXPECTED: dict[str, dict[str, Any]] = {
    "r6": {"first_response_seconds": 20.0, "agents": ["Alice"], "messages": 2, "rating": None},
    "r5": {"first_response_seconds": 60.0, "agents": ["Alice"], "messages": 3, "rating": 4},
    "r4": {"first_response_seconds": None, "agents": [], "messages": 1, "rating": 1},
    "r3": {"first_response_seconds": 45.0, "agents": ["Bob"], "messages": 3, "rating": None},
    "r2": {"first_response_seconds": 120.0, "agents": ["Alice"], "messages": 2, "rating": 2},
    "r1": {"first_response_seconds": 30.0, "agents": ["Alice", "Bob"], "messages": 4, "rating": 5},
}


@dataclass
class Seededdb:
    env_file: Path
    cwd: Path
    by_id: dict[str, Seeded]
    url: str


@pytest_asyncio.fixture
async def admin(database_url: str, tmp_path: Path) -> AsyncIterator[Seededdb]:
    db = Database(database_url)
    try:
        await db.migrate()
        await seed(db, seeded())
    finally:
        await db.close()
    env_file = tmp_path / "sitechat.env"
    env_file.write_text(
        "\n".join(
            [
                f"SITECHAT_DATABASE_URL={database_url}",
                "SLACK_BOT_TOKEN=xoxb-test",  # configured, never called: report and export read the database only
                f"SLACK_SIGNING_SECRET={SIGNING_SECRET}",
                "SITECHAT_SITES__ACME__NAME=Acme",
                f"SITECHAT_SITES__ACME__ORIGINS={ORIGIN}",
                "SITECHAT_SITES__ACME__SLACK_CHANNEL=C0SUPPORT",
                "SITECHAT_SITES__ACME__OFFICE_HOURS=Mon-Fri 09:00-17:00 Europe/Berlin",
                "SITECHAT_SITES__ACME__TOPICS__SALES__LABEL=Sales",
                "SITECHAT_SITES__BETA__NAME=Beta",
                "SITECHAT_SITES__BETA__ORIGINS=https://beta.example",
                "SITECHAT_SITES__BETA__SLACK_CHANNEL=C0BETA",
            ]
        )
    )
    env_file.chmod(0o600)
    yield Seededdb(env_file, tmp_path, {c.id: c for c in seeded()}, database_url)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", head
    width, height = struct.unpack(">II", head[16:24])
    return width, height


async def test_report_draws_the_week_and_says_its_numbers(admin: Seededdb) -> None:
    out = admin.cwd / "out" / "week.png"
    code, text = await run_sitechat(
        "report",
        "--env-file",
        str(admin.env_file),
        "--since",
        "7d",
        "--site",
        "acme",
        "--out",
        str(out),
        cwd=admin.cwd,
    )
    assert code == 0, text
    assert png_size(out) == (1600, 1000)
    pixels = image.imread(out)
    assert pixels.shape[:2] == (1000, 1600) and pixels.std() > 0.05  # a drawing, not a blank page

    assert "Acme — " in text and "(Europe/Berlin)" in text
    assert "Conversations: 6" in text  # not the offline message, the old chat, nor beta's
    # first responses 20, 30, 45, 60, 120 s
    assert "median 45 s, 90th percentile 1 min 36 s, within a minute 80% (5 answered)" in text
    assert "Missed: 2 (1 closed unanswered, 1 offline message)" in text
    assert "Ratings: 4, average 3.00 / 5 — 5★ 1  4★ 1  3★ 0  2★ 1  1★ 1" in text
    assert "2/5 “Too slow”" in text and "1/5 (no comment)" in text
    assert f"Report picture: {out} (1600×1000)" in text


async def test_report_of_all_sites_and_what_it_refuses(admin: Seededdb) -> None:
    code, text = await run_sitechat("report", "--env-file", str(admin.env_file), cwd=admin.cwd)
    assert code == 0, text
    assert "Conversations: 7" in text  # beta's too
    assert png_size(admin.cwd / "report.png") == (1600, 1000)

    code, text = await run_sitechat("report", "--env-file", str(admin.env_file), "--site", "nope", cwd=admin.cwd)
    assert code == 2 and "no such site" in text and "acme, beta" in text, text
    code, text = await run_sitechat(
        "export", "--env-file", str(admin.env_file), "--format", "csv", "--since", "soon", cwd=admin.cwd
    )
    assert code == 2 and "--since 'soon'" in text and "Traceback" not in text, text


def expected_row(s: Seeded) -> dict[str, Any]:
    shown = [m for m in s.messages if not m.deleted]
    return {
        "id": s.id,
        "site": s.site,
        "topic": s.topic,
        "visitor_name": s.visitor_name,
        "visitor_email": s.visitor_email,
        "started_at": s.started_at.isoformat().replace("+00:00", "Z"),
        "closed_at": s.closed_at.isoformat().replace("+00:00", "Z") if s.closed_at else None,
        **EXPECTED[s.id],
        "rating_comment": s.comment,
        "pages": list(s.pages),
        "transcript": "\n".join(
            [
                f"Transcript — Acme — {s.visitor_name}" + (f" <{s.visitor_email}>" if s.visitor_email else ""),
                f"Started {s.started_at:%Y-%m-%d %H:%M} UTC, closed "
                + (f"at {s.closed_at:%Y-%m-%d %H:%M} UTC." if s.closed_at else "not yet."),
                "",
                *(f"[{m.at:%H:%M}] {'—' if m.role == 'system' else m.name}: {m.text}" for m in shown),
            ]
        ),
    }


async def test_export_jsonl_and_csv_say_exactly_what_was_seeded(admin: Seededdb) -> None:
    wanted = [expected_row(admin.by_id[cid]) for cid in EXPECTED]  # oldest first

    code, text = await run_sitechat(
        "export",
        "--env-file",
        str(admin.env_file),
        "--site",
        "acme",
        "--format",
        "jsonl",
        "--out",
        "rows.jsonl",
        cwd=admin.cwd,
    )
    assert code == 0, text
    assert "exported 6 conversations to rows.jsonl" in text
    lines = (admin.cwd / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [list(r) for r in rows] == [list(COLUMNS)] * 6
    assert rows == wanted

    code, text = await run_sitechat(
        "export",
        "--env-file",
        str(admin.env_file),
        "--site",
        "acme",
        "--format",
        "csv",
        "--since",
        "30d",
        cwd=admin.cwd,
    )
    assert code == 0, text
    body = text[: text.index("sitechat: exported")]  # stdout; the count goes to stderr, after it
    table = list(csv.DictReader(io.StringIO(body, newline="")))
    assert [list(r) for r in table] == [list(COLUMNS)] * 6

    def as_csv(row: dict[str, Any]) -> dict[str, str]:
        return {k: "" if v is None else "\n".join(v) if isinstance(v, list) else str(v) for k, v in row.items()}

    assert table == [as_csv(r) for r in wanted]

    code, text = await run_sitechat(
        "export", "--env-file", str(admin.env_file), "--format", "jsonl", "--since", "60d", cwd=admin.cwd
    )
    assert code == 0, text
    ids = [json.loads(line)["id"] for line in text.splitlines() if line.startswith("{")]
    assert ids == ["old", *EXPECTED, "beta1"]  # every site, oldest first, no offline message


async def test_the_export_and_the_webhook_carry_the_same_row(admin: Seededdb) -> None:
    """The streamed export and the one-conversation row a webhook sends agree, column by column."""
    from bridge.store.export_rows import export_row  # the webhook's

    db = Database(admin.url)
    try:
        streamed = [row.as_json() async for row in export_rows(db, ago(24 * 60), NOW, site_names={"acme": "Acme"})]
        assert [r["id"] for r in streamed] == ["old", *EXPECTED, "beta1"]
        async with db.read() as conn:
            for row in streamed:
                assert await export_row(conn, row["id"], site_name="Acme" if row["site"] == "acme" else "beta") == row
    finally:
        await db.close()

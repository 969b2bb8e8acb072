"""Draw ``docs/report.png``, the README's picture of ``sitechat report``, from a demo-like week.

Seeds four weeks of a small shop's chats (``tests/seeding.py``) into a SQLite file in a temporary
folder and draws the last week exactly as ``sitechat report --site acme`` would, with a fixed clock so
the picture only changes when the report does. Run: .venv/bin/python docs/make_report.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.insight_text import summary  # noqa: E402
from bridge.store.database import Database  # noqa: E402
from bridge.store.stats import compute_stats  # noqa: E402
from config.office_hours import OfficeHours  # noqa: E402
from sitechat.insight.chart import render  # noqa: E402
from tests.seeding import Said, Seeded, demo_conversations, seed  # noqa: E402

OFFICE_HOURS = OfficeHours.parse("Mon-Fri 09:00-17:00 Europe/Berlin")
END = datetime(2025, 3, 16, 23, 0, tzinfo=UTC)  # Monday 17 March 2025, 00:00 in Berlin: a whole week before it


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/demo.db")
        try:
            await db.migrate()
            await seed(db, demo_conversations(datetime(2025, 2, 17, tzinfo=UTC), 28))
            # an offline message on Saturday evening
            saturday = END - timedelta(days=2, hours=-10)
            await seed(db, [Seeded("offline1", saturday, kind="offline", closed_at=saturday,
                                   messages=(Said("system", "Acme", "Offline message", saturday),))])
            week = END - timedelta(days=7)
            stats = await compute_stats(db, week, END, site="acme", zone=OFFICE_HOURS.tz)
        finally:
            await db.close()
    size = render(stats, "Acme", out, OFFICE_HOURS)
    print(summary(stats, "Acme"))
    print(f"\n{out}: {size[0]}×{size[1]}")


if __name__ == "__main__":
    asyncio.run(main(ROOT / "docs" / "report.png"))

"""``--since 7d``: how far back a report or an export looks."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
EXAMPLES = "7d, 12h, 2w, 90m, or a date such as 2024-03-01"


def since(text: str, now: datetime) -> datetime:
    """The period's start: ``now`` minus a duration (``7d``), or a date (midnight UTC) or time (ISO 8601)."""
    match = _AGO.match(text)
    if match:
        return now - float(match[1]) * _UNITS[match[2].lower()]
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: write {EXAMPLES}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

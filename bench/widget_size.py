"""Gzipped size of everything the embeddable widget loads, against its budget.

The widget is one file (widget.js) and loads nothing else: no fonts, images or other scripts.
Run: python bench/widget_size.py  — exits 1 when over budget.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

BUDGET_BYTES = 15 * 1024
STATIC = Path(__file__).resolve().parent.parent / "widget_server" / "static"
FILES = ["widget.js"]


def gzipped_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))


def main() -> int:
    total = 0
    for name in FILES:
        path = STATIC / name
        raw, packed = path.stat().st_size, gzipped_size(path)
        total += packed
        print(f"{name}: {raw} bytes raw, {packed} bytes gzipped ({packed / 1024:.2f} KB)")
    verdict = "OK" if total <= BUDGET_BYTES else "OVER BUDGET"
    print(
        f"total: {total} bytes gzipped ({total / 1024:.2f} KB); budget {BUDGET_BYTES / 1024:.0f} KB gzipped: {verdict}"
    )
    return 0 if total <= BUDGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())

"""The size of everything the embeddable widget loads, as shipped, against its budget.

The widget is one file, the build of widget/src/ (``make widget``): widget_server/static/widget.js, with
widget.js.gz and widget.js.br beside it, which the server sends as they are to browsers that accept them.
An English visitor's browser loads nothing else: no fonts, images or other scripts. A visitor in another
language also fetches that language's pack of texts (widget_server/static/texts/LANG.json, built from the
catalogue by the same build), listed below the budget line. The budget is on widget.js's gzipped size
(brotli, which every current browser takes, is smaller still).

Run: make widget && python bench/widget_size.py  — exits 1 when over budget, 2 when not built.
"""

from __future__ import annotations

import sys
from pathlib import Path

BUDGET_BYTES = 15 * 1024
STATIC = Path(__file__).resolve().parent.parent / "widget_server" / "static"
FILES = ["widget.js"]
#: fetched only by visitors in that language (language.js), one of them at most
PACKS = sorted(p.name for p in (STATIC / "texts").glob("*.json")) if (STATIC / "texts").is_dir() else []
#: what the server sends: the file itself, and its precompressed variants
VARIANTS = {"raw": "", "gzip": ".gz", "brotli": ".br"}


def kb(size: int) -> str:
    return f"{size} bytes ({size / 1024:.2f} KB)"


def main() -> int:
    totals = dict.fromkeys(VARIANTS, 0)
    for name in FILES:
        paths = {variant: STATIC / (name + suffix) for variant, suffix in VARIANTS.items()}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            print(f"not built: {', '.join(missing)} missing; run `make widget`", file=sys.stderr)
            return 2
        sizes = {variant: path.stat().st_size for variant, path in paths.items()}
        for variant, size in sizes.items():
            totals[variant] += size
        print(f"{name}: " + ", ".join(f"{variant} {kb(size)}" for variant, size in sizes.items()))
    within = totals["gzip"] <= BUDGET_BYTES
    print(
        f"total: {', '.join(f'{variant} {kb(size)}' for variant, size in totals.items())}; "
        f"budget {BUDGET_BYTES / 1024:.0f} KB gzipped: {'OK' if within else 'OVER BUDGET'}"
    )
    if not PACKS:
        print("language packs: not built; run `make widget`", file=sys.stderr)
        return 2
    for name in PACKS:
        sizes = {variant: (STATIC / "texts" / (name + suffix)).stat().st_size for variant, suffix in VARIANTS.items()}
        print(f"texts/{name} (other languages only): " + ", ".join(f"{v} {kb(size)}" for v, size in sizes.items()))
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())

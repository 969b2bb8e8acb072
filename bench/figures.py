"""One line per figure, the same shape in every benchmark, for ``bench/run_all.py`` (``make bench``) to
gather into one table: ``figure | what | target | measured | met``."""

from __future__ import annotations

PREFIX = "figure | "


def figure(what: str, target: str, measured: str, met: bool | None) -> None:
    """``met`` None: reported, no target to meet (a tiny run, or a figure shown for context)."""
    verdict = "—" if met is None else ("met" if met else "NOT met")
    print(f"{PREFIX}{what} | {target} | {measured} | {verdict}", flush=True)

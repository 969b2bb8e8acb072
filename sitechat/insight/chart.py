"""The report as one PNG page (matplotlib, Agg): what a team lead looks at on Monday morning.

Top: the period's numbers in large type. Then the weekday × hour heatmap of chats in the site's time
zone (office hours outlined: who should be on duty when), the ratings with the low ones' comments,
the first response per day (median, 90th percentile, share within a minute) and the missed chats per day.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from bridge.insight import WEEKDAYS, Stats
from bridge.insight_text import human_seconds, percent, period_title
from config.office_hours import OfficeHours

WIDTH, HEIGHT, DPI = 16, 10, 100  # 1600 × 1000 pixels
INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
BLUE, LIGHT_BLUE, GREEN, RED = "#2563eb", "#93c5fd", "#16a34a", "#dc2626"
SCORE_COLOURS = ("#dc2626", "#f97316", "#eab308", "#84cc16", "#16a34a")  # 1★ … 5★


def render(stats: Stats, name: str, out: Path, office_hours: OfficeHours | None = None) -> tuple[int, int]:
    """Draw the report into ``out`` (PNG); its size in pixels."""
    # a Figure of its own, no pyplot: no global state, no GUI backend, the Agg canvas draws the PNG
    with rc_context({"font.size": 10, "text.color": INK, "axes.labelcolor": MUTED, "axes.edgecolor": GRID}):
        fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, facecolor="white")
        grid = fig.add_gridspec(
            3, 3, height_ratios=[0.5, 2.1, 1.8], hspace=0.45, wspace=0.28, left=0.065, right=0.97, top=0.9, bottom=0.07
        )
        fig.suptitle(period_title(stats, name), x=0.065, ha="left", fontsize=17, fontweight="bold")
        _tiles(fig.add_subplot(grid[0, :]), stats)
        _heatmap(fig, fig.add_subplot(grid[1, :2]), stats, office_hours)
        right = grid[1, 2].subgridspec(2, 1, height_ratios=[1, 1.1], hspace=0.5)
        _ratings(fig.add_subplot(right[0]), stats)
        _low_ratings(fig.add_subplot(right[1]), stats)
        _first_response(fig.add_subplot(grid[2, :2]), stats)
        _missed(fig.add_subplot(grid[2, 2]), stats)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png", dpi=DPI, facecolor="white")
    return WIDTH * DPI, HEIGHT * DPI


def _tiles(ax: Axes, stats: Stats) -> None:
    ax.axis("off")
    ratings = stats.ratings
    tiles = [
        (str(stats.conversations), "conversations"),
        (human_seconds(stats.response.median), "median first response"),
        (percent(stats.response.within_minute), "answered within a minute"),
        (f"{ratings.average:.1f} ★" if ratings.average is not None else "–", f"average of {ratings.count} ratings"),
        (str(stats.missed.total), "missed chats"),
    ]
    for i, (big, label) in enumerate(tiles):
        x = i / len(tiles)
        colour = RED if label == "missed chats" and stats.missed.total else INK
        ax.text(x, 0.55, big, fontsize=26, fontweight="bold", color=colour, transform=ax.transAxes, va="center")
        ax.text(x, 0.0, label, fontsize=11, color=MUTED, transform=ax.transAxes, va="center")


def _title(ax: Axes, text: str) -> None:
    ax.set_title(text, loc="left", fontsize=12, fontweight="bold", pad=8)


def _frame(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def _heatmap(fig: Figure, ax: Axes, stats: Stats, office_hours: OfficeHours | None) -> None:
    cells = stats.heatmap
    peak = max(max(row) for row in cells) or 1
    image = ax.imshow(cells, cmap="Blues", vmin=0, vmax=peak, aspect="auto", interpolation="nearest")
    for weekday, row in enumerate(cells):
        for hour, n in enumerate(row):
            if n:
                ax.text(
                    hour,
                    weekday,
                    str(n),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if n > peak * 0.55 else INK,
                )
            if office_hours and any(s.covers(weekday, hour * 60) for s in office_hours.spans):
                ax.add_patch(Rectangle((hour - 0.5, weekday - 0.5), 1, 1, fill=False, edgecolor=GREEN, linewidth=1.2))
    ax.set_yticks(range(7), WEEKDAYS)
    ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    outlined = " — office hours outlined in green" if office_hours else ""
    _title(ax, f"When visitors write: conversations by weekday and hour ({stats.zone}){outlined}")
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01).outline.set_visible(False)


def _ratings(ax: Axes, stats: Stats) -> None:
    ratings = stats.ratings
    scores = list(range(1, 6))
    ax.barh(scores, ratings.distribution, color=SCORE_COLOURS, height=0.7)
    for score, n in zip(scores, ratings.distribution, strict=True):
        ax.text(n, score, f"  {n}", va="center", fontsize=9)
    ax.set_yticks(scores, [f"{s} ★" for s in scores])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, max(max(ratings.distribution), 1) * 1.2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    average = f", average {ratings.average:.2f}" if ratings.average is not None else ""
    _title(ax, f"Ratings: {ratings.count}{average}")


def _low_ratings(ax: Axes, stats: Stats) -> None:
    ax.axis("off")
    _title(ax, "What the low ratings (1–2 ★) said")
    low = [r for r in stats.ratings.low if r.comment][-6:]
    if not low:
        silent = len(stats.ratings.low)
        ax.text(
            0,
            0.85,
            f"{silent} low ratings, none with a comment" if silent else "No low ratings.",
            color=MUTED,
            transform=ax.transAxes,
            va="top",
        )
        return
    y = 0.95
    for r in reversed(low):  # newest first
        comment = r.comment or ""
        shown = comment if len(comment) <= 70 else comment[:69] + "…"
        ax.text(0, y, f"{r.score} ★  “{shown}”", transform=ax.transAxes, va="top", fontsize=9.5)
        ax.text(
            0.02,
            y - 0.1,
            f"{r.started_at:%a %d %b} · {r.conversation_id}",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
            color=MUTED,
        )
        y -= 0.21


def _day_ticks(ax: Axes, stats: Stats, most: int = 14) -> list[int]:
    xs = list(range(len(stats.per_day)))
    step = -(-len(xs) // most) or 1  # at most ``most`` labels
    ax.set_xticks(xs[::step], [d.day.strftime("%a\n%d %b") for d in stats.per_day][::step])
    return xs


def _first_response(ax: Axes, stats: Stats) -> None:
    xs = _day_ticks(ax, stats)
    medians = [d.response.median or 0 for d in stats.per_day]
    p90s = [d.response.p90 or 0 for d in stats.per_day]
    ax.bar([x - 0.2 for x in xs], medians, width=0.4, color=BLUE, label="median")
    ax.bar([x + 0.2 for x in xs], p90s, width=0.4, color=LIGHT_BLUE, label="90th percentile")
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 3, 6, 10]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: human_seconds(v) if v else "0"))
    ax.set_ylabel("first response")
    _frame(ax)
    share = ax.twinx()
    within: list[Any] = [
        d.response.within_minute * 100 if d.response.within_minute is not None else None for d in stats.per_day
    ]
    points = [(x, w) for x, w in zip(xs, within, strict=True) if w is not None]
    if points:
        share.plot(*zip(*points, strict=True), color=GREEN, marker="o", linewidth=2, label="answered within a minute")
    share.set_ylim(0, 105)
    share.yaxis.set_major_formatter(PercentFormatter())
    for side in ("top", "left"):
        share.spines[side].set_visible(False)
    handles = ax.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", frameon=False, ncols=3, fontsize=9)
    ax.set_ylim(0, max([*p90s, 60]) * 1.3)
    r = stats.response
    _title(
        ax,
        f"First response per day — median {human_seconds(r.median)}, 90th percentile {human_seconds(r.p90)}, "
        f"{percent(r.within_minute)} within a minute",
    )


def _missed(ax: Axes, stats: Stats) -> None:
    xs = _day_ticks(ax, stats, most=7)
    missed = [d.missed for d in stats.per_day]
    ax.bar(xs, missed, color=RED, width=0.6)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max([*missed, 1]) * 1.25)
    _frame(ax)
    m = stats.missed
    _title(ax, f"Missed chats: {m.total} ({m.unanswered} unanswered, {m.offline} offline)")

"""``sitechat export [--since 30d] [--site ID] --format csv|jsonl [--out FILE]``: one row per conversation
(CONTRACT §9), streamed from the database to the file as it is read."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
from functools import partial
from pathlib import Path
from typing import TextIO

from bridge.store.database import Database
from bridge.store.export import COLUMNS, ExportRow, export_rows
from config.settings import Settings
from sitechat.insight.common import Period, Refused, period_of, refuse, with_database


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="30d", help="how far back: 30d, 12h, 2w, or a date (default 30d)")
    parser.add_argument("--site", default=None, help="one site's id (default: all sites)")
    parser.add_argument("--format", required=True, choices=("csv", "jsonl"), help="csv or jsonl")
    parser.add_argument("--out", default=None, help="the file to write (default: standard output)")


def csv_values(row: ExportRow) -> list[str | int | float]:
    """A row for CSV: empty for nothing, lists one item per line (a quoted cell keeps them together)."""
    data = row.as_json()
    values: list[str | int | float] = []
    for column in COLUMNS:
        value = data[column]
        if value is None:
            values.append("")
        elif isinstance(value, list):
            values.append("\n".join(value))
        else:
            values.append(value)
    return values


async def write_rows(db: Database, settings: Settings, period: Period, fmt: str, out: TextIO) -> int:
    names = {site_id: site.name for site_id, site in settings.sites.items()}
    written = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(COLUMNS)
    async for row in export_rows(db, period.start, period.end, site=period.site, site_names=names):
        if writer is not None:
            writer.writerow(csv_values(row))
        else:
            out.write(json.dumps(row.as_json(), ensure_ascii=False) + "\n")
        written += 1
    return written


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        period = period_of(settings, args.since, args.site)
        if args.out is None:
            to_stdout = partial(write_rows, settings=settings, period=period, fmt=args.format, out=sys.stdout)
            count = asyncio.run(with_database(settings, to_stdout))
            sys.stdout.flush()
        else:
            count = _to_file(settings, period, args.format, Path(args.out))
    except Refused as exc:
        return refuse(exc)
    except BrokenPipeError:
        # the reader went away (`sitechat export … | head`): stop quietly, and let the exit say it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    where = args.out or "standard output"
    print(f"sitechat: exported {count} conversations to {where}", file=sys.stderr)
    return 0


def _to_file(settings: Settings, period: Period, fmt: str, path: Path) -> int:
    """Written beside the file and moved into place at the end: a failed export leaves no half file."""
    unfinished = path.with_name(f".{path.name}.partial")
    try:
        with unfinished.open("w", encoding="utf-8", newline="") as out:
            to_file = partial(write_rows, settings=settings, period=period, fmt=fmt, out=out)
            count = asyncio.run(with_database(settings, to_file))
        os.replace(unfinished, path)
    except OSError as exc:
        raise Refused(f"cannot write {path}: {exc.strerror or exc}", 1) from None
    finally:
        unfinished.unlink(missing_ok=True)
    return count

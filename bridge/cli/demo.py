"""``sitechat demo``: a local Matrix homeserver as the team chat, SQLite, and a demo page."""

from __future__ import annotations

import argparse


async def run_demo(args: argparse.Namespace) -> int:
    print("sitechat demo: not available yet")
    return 1

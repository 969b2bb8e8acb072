"""Draw ``docs/slack-thread.png``, the README's picture of a conversation's thread in Slack, and write
``docs/slack-thread.json``, the root message's Block Kit payload (paste it into Slack's Block Kit Builder).

Runs the scripted conversation of ``tests/slack_thread.py`` through the real bridge (in this process) and
the fake Slack, takes the thread exactly as the fake Slack holds it — the root's blocks, each reply's text,
name and picture — and renders it as a small static Slack-like page (``thread_page``), screenshot by the
Chromium the browser tests use. ``tests/test_docs_slack_thread.py`` fails when the JSON no longer matches
what the bridge posts: then run this again and commit both files.
Run: .venv/bin/python docs/make_slack_thread.py
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.slack_thread import Thread, record_thread  # noqa: E402

PICTURE = ROOT / "docs" / "slack-thread.png"
PAYLOAD = ROOT / "docs" / "slack-thread.json"
#: the pictures Slack would show come from example domains nobody can fetch: initials on a colour instead
COLOURS = ("#e01e5a", "#2eb67d", "#36c5f0", "#ecb22e", "#4a154b", "#1264a3")

# ------------------------------------------------------------------ mrkdwn, minimally

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_MARKS = (
    (re.compile(r"`([^`\n]+)`"), r"<code>\1</code>"),
    (re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])"), r"<b>\1</b>"),
    (re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])"), r"<i>\1</i>"),
)


def _plain(slack_text: str) -> str:
    """Slack's escaped text (``&lt; &gt; &amp;``) as HTML-escaped text."""
    return html.escape(slack_text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"), quote=False)


def _marked(slack_text: str) -> str:
    escaped = _plain(slack_text)
    for pattern, replacement in _MARKS:
        escaped = pattern.sub(replacement, escaped)
    return escaped


def mrkdwn(slack_text: str) -> str:
    """HTML for Slack's mrkdwn: *bold*, _italic_, `code`, ``<url|label>`` and ``<url>`` links, line breaks."""
    out, at = [], 0
    for link in _LINK.finditer(slack_text):
        out.append(_marked(slack_text[at : link.start()]))
        url, label = link.group(1), link.group(2)
        href = html.escape(url.replace("&amp;", "&"))
        out.append(f'<a href="{href}">{_marked(label) if label else _plain(url)}</a>')
        at = link.end()
    out.append(_marked(slack_text[at:]))
    return "".join(out).replace("\n", "<br>")


def _text(obj: dict[str, Any]) -> str:
    """A Block Kit text object as HTML."""
    if obj.get("type") == "mrkdwn":
        return mrkdwn(obj["text"])
    return html.escape(obj["text"], quote=False).replace("\n", "<br>")


# ------------------------------------------------------------------ blocks and messages


def _block(block: dict[str, Any]) -> str:
    kind = block["type"]
    if kind == "section":
        parts = []
        if "text" in block:
            parts.append(f'<div class="section-text">{_text(block["text"])}</div>')
        if block.get("fields"):
            parts.append('<div class="fields">' + "".join(f"<div>{_text(f)}</div>" for f in block["fields"]) + "</div>")
        return f'<div class="block section">{"".join(parts)}</div>'
    if kind == "context":
        return (
            '<div class="block context">' + " ".join(f"<span>{_text(e)}</span>" for e in block["elements"]) + "</div>"
        )
    if kind == "actions":
        buttons = "".join(
            f'<span class="button {html.escape(e.get("style", ""))}">{_text(e["text"])}</span>'
            for e in block["elements"]
            if e["type"] == "button"
        )
        return f'<div class="block actions">{buttons}</div>'
    if kind == "divider":
        return '<hr class="block">'
    raise ValueError(f"no drawing for a {kind!r} block: add one to docs/make_slack_thread.py")


def _avatar(name: str) -> str:
    initials = "".join(word[0] for word in name.split()[:2]).upper()
    colour = COLOURS[sum(map(ord, name)) % len(COLOURS)]
    return f'<div class="avatar" style="background:{colour}">{html.escape(initials)}</div>'


def _author(message: dict[str, Any], people: dict[str, tuple[str, str]]) -> tuple[str, bool]:
    """Who Slack shows as a message's author, and whether it is an app (a bot's post)."""
    if message.get("bot_id"):
        return message.get("username") or message["bot_profile"]["name"], True
    return people.get(message["user"], (message["user"], ""))[0], False


def _message(message: dict[str, Any], people: dict[str, tuple[str, str]]) -> str:
    name, app = _author(message, people)
    when = datetime.fromtimestamp(float(message["ts"]), UTC).strftime("%H:%M")
    badge = '<span class="app">APP</span>' if app else ""
    if message.get("blocks"):
        body = "".join(_block(b) for b in message["blocks"])
    else:
        body = f'<div class="text">{mrkdwn(message["text"])}</div>'
    return (
        f'<div class="message">{_avatar(name)}<div class="content">'
        f'<div class="who"><b>{html.escape(name)}</b>{badge}<span class="time">{when}</span></div>'
        f"{body}</div></div>"
    )


STYLE = """
body { margin: 0; background: #fff; font: 15px/1.47 "Liberation Sans", Arial, sans-serif; color: #1d1c1d; }
.thread { width: 620px; border: 1px solid #ddd; }
header { padding: 12px 16px; border-bottom: 1px solid #ddd; font-size: 18px; font-weight: 900; }
header small { font-size: 13px; font-weight: 400; color: #616061; margin-left: 6px; }
.message { display: flex; gap: 8px; padding: 8px 16px; }
.avatar { flex: none; width: 36px; height: 36px; border-radius: 6px; color: #fff; font-weight: 700;
          display: flex; align-items: center; justify-content: center; font-size: 14px; }
.content { min-width: 0; flex: 1; }
.who b { font-weight: 900; }
.app { font-size: 10px; font-weight: 700; color: #616061; background: #e8e8e8; border-radius: 2px;
       padding: 1px 3px; margin-left: 4px; vertical-align: 2px; }
.time { font-size: 12px; color: #616061; margin-left: 8px; }
.replies { display: flex; align-items: center; gap: 12px; padding: 4px 16px; color: #616061; font-size: 13px; }
.replies hr { flex: 1; border: 0; border-top: 1px solid #ddd; }
.block { margin: 4px 0; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 16px; margin-top: 8px; }
.context { font-size: 12px; color: #616061; }
.actions { display: flex; gap: 8px; margin-top: 8px; }
.button { border: 1px solid #bbb; border-radius: 4px; padding: 3px 12px; font-size: 13px; font-weight: 700; }
.button.primary { background: #007a5a; border-color: #007a5a; color: #fff; }
.button.danger { background: #e01e5a; border-color: #e01e5a; color: #fff; }
a { color: #1264a3; text-decoration: none; }
code { font: 12px "DejaVu Sans Mono", monospace; color: #e01e5a; background: #f6f6f6; border: 1px solid #ddd;
       border-radius: 3px; padding: 1px 3px; }
"""


def thread_page(thread: Thread) -> str:
    """The thread as a static, Slack-like HTML page: the root with its blocks, then every reply."""
    count = len(thread.replies)
    replies = "".join(_message(m, thread.people) for m in thread.replies)
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>Thread</title><style>{STYLE}</style>"
        f'<div class="thread"><header>Thread<small>#{html.escape(thread.channel_name)}</small></header>'
        f"{_message(thread.root, thread.people)}"
        f'<div class="replies"><span>{count} {"reply" if count == 1 else "replies"}</span><hr></div>'
        f"{replies}</div></html>"
    )


def payload(thread: Thread) -> str:
    """The root's Block Kit payload, as Block Kit Builder takes it."""
    return json.dumps({"blocks": thread.root["blocks"]}, indent=2, ensure_ascii=False) + "\n"


async def screenshot(page_html: str, out: Path) -> None:
    from playwright.async_api import async_playwright

    from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 660, "height": 400}, device_scale_factor=2)
            await page.set_content(page_html)
            await page.locator(".thread").screenshot(path=str(out), animations="disabled")
        finally:
            await browser.close()


async def main() -> None:
    thread = await record_thread()
    PAYLOAD.write_text(payload(thread), encoding="utf-8")
    await screenshot(thread_page(thread), PICTURE)
    print(f"{PAYLOAD.relative_to(ROOT)}, {PICTURE.relative_to(ROOT)}: the root and {len(thread.replies)} replies")


if __name__ == "__main__":
    asyncio.run(main())

"""The ``!commands`` a team member types in a conversation's thread (``bridge.commands`` reads them)."""

from __future__ import annotations

from bridge import craft, greeting, steps
from bridge.commands import Command, CommandCall, help_text
from bridge.events import MessageReceived
from bridge.model import Conversation, Participant, Status
from bridge.outbound import Invite, Notice, OpenThread, RootState, Transcript
from bridge.store import conversations as q
from bridge.store import outbox
from bridge.texts import text, translate
from bridge.transcript import render_transcript
from bridge.work import Core, Work

#: what the visitor is told when the chat moves to another topic's team (``{team}``: the topic's label)
TRANSFERRED = text("transfer", "Your chat is now with our {team} team.")


async def run_command(core: Core, work: Work, conv: Conversation, call: CommandCall, event: MessageReceived) -> None:
    origin, author = event.endpoint, event.author
    match call.command:
        case Command.CLOSE:
            if not await steps.close(core, work, conv, by=author):
                await work.notice(conv.id, origin, "This conversation is already closed.")
        case Command.CLAIM:
            await steps.claim(work, conv, author, origin)
        case Command.BYE:
            await steps.agent_says(work, conv, author, call.args or closing(core, conv), origin)
            await steps.close(core, work, conv, by=author)
        case Command.SNIPPET:
            text = core.snippets.get(call.args.strip())
            if text is None:
                names = ", ".join(sorted(core.snippets)) or "none configured (SITECHAT_SNIPPETS_FILE)"
                await work.notice(conv.id, origin, f"No snippet {call.args.strip()!r}. Snippets: {names}")
            else:
                await steps.agent_says(work, conv, author, text, origin)
        case Command.SHOW:
            url, _, label = call.args.partition(" ")
            if not url.startswith(("http://", "https://")):
                await work.notice(conv.id, origin, "Usage: !show https://example.com/page [text]")
            else:
                await steps.agent_says(work, conv, author, f"{label.strip()} {url}".strip(), origin)
        case Command.TRANSFER:
            await transfer(core, work, conv, call.args.strip().lower(), author, origin)
        case Command.INVITE:
            await invite(work, conv, call.args.strip(), author, origin)
        case Command.HELP | None:
            await work.notice(conv.id, origin, help_text(core.note_prefix))


async def invite(work: Work, conv: Conversation, who: str, by: Participant, origin: str) -> None:
    """``!invite USER``: the team chat where it was typed mentions them in the thread (``Invite``); their
    first reply shows the visitor that they joined (``bridge.faces``)."""
    if not who:
        await work.notice(conv.id, origin, "Usage: !invite @person — mention them as you would anyone here.")
    elif conv.status is not Status.OPEN:
        await work.notice(conv.id, origin, "This conversation is closed.")
    else:
        await work.enqueue(conv.id, origin, Invite(who, by.name))


def closing(core: Core, conv: Conversation) -> str:
    """The site's closing (``…__CLOSING``, per language) in the visitor's language, by name when known."""
    return greeting.closing(core.sites.get(conv.site_id), conv.language, conv.visitor.name)


async def transfer(core: Core, work: Work, conv: Conversation, topic: str, actor: Participant, origin: str) -> None:
    """Hand the conversation to ``topic``'s team: new threads where it routes elsewhere, with the history."""
    site = core.sites.get(conv.site_id)
    if site is None or topic not in site.topics:
        names = ", ".join(sorted(site.topics)) if site and site.topics else "none"
        await work.notice(conv.id, origin, f"Usage: !transfer TOPIC (topics: {names})")
        return
    label = site.topics[topic].label
    await q.set_fields(work.conn, conv.id, topic=topic, claimed_by=None)
    if conv.status is Status.OPEN:
        await craft.say_to_visitor(core, work, conv, translate(TRANSFERRED, conv.language).replace("{team}", label))
    links = await q.thread_links(work.conn, conv.id)
    wanted = core.reachable_destinations(site, topic)
    if {endpoint: destination for endpoint, (destination, _ref) in links.items()} == wanted:
        await work.enqueue_all(conv.id, Notice(f"Topic is now {label}"))
        await work.enqueue_all(conv.id, RootState())
        return
    # What is still queued for the old threads, and the farewell, stay addressed to them (the links
    # are about to change); then the conversation opens new threads with the history so far.
    for endpoint, (destination, ref) in links.items():
        await outbox.readdress_pending(work.conn, conv.id, endpoint, destination, ref, work.now)
        if ref is not None:
            farewell = Notice(f"Transferred to {label} by {actor.name}")
            await work.enqueue(conv.id, endpoint, farewell, address=(destination, ref))
    await q.relink_threads(work.conn, conv.id, wanted)
    messages = await q.messages_after(work.conn, conv.id, 0, limit=100_000)
    history = render_transcript(conv, messages, core.site_name(conv.site_id), "not yet (transferred)")
    for endpoint in wanted:
        await work.enqueue(conv.id, endpoint, OpenThread())
        await work.enqueue(conv.id, endpoint, Transcript(history))

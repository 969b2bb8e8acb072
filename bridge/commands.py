"""What a team-side reply means: a message for the visitor, an internal note, or a ``!command``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Command(StrEnum):
    CLOSE = "close"
    CLAIM = "claim"
    TRANSFER = "transfer"
    SNIPPET = "s"
    SHOW = "show"
    BYE = "bye"
    INVITE = "invite"
    HELP = "help"


@dataclass(frozen=True)
class Reply:
    text: str


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class CommandCall:
    command: Command | None  # None: unknown command → help
    args: str
    typed: str


HELP = """Commands in this thread:
!claim — take this conversation
!close — end it (the visitor is asked for a rating)
!transfer TOPIC — hand it to another topic's team
!s NAME — send the saved reply NAME
!show URL [text] — send the visitor a link
!bye [text] — say goodbye (the site's closing, or your text) and close
!invite @person — ask someone (a specialist, your boss) to join this chat; they are mentioned here
!help — this list
Start a reply with {prefix} for an internal note the visitor never sees."""


def interpret(text: str, note_prefix: str) -> Reply | Note | CommandCall:
    stripped = text.strip()
    if stripped.startswith(note_prefix):
        return Note(stripped)
    if stripped.startswith("!") and len(stripped) > 1 and not stripped[1].isspace():
        word, *rest = stripped[1:].split(maxsplit=1)  # any whitespace ends the command word
        args = rest[0] if rest else ""
        try:
            command: Command | None = Command(word.lower())
        except ValueError:
            command = None
        return CommandCall(command, args.strip(), stripped)
    return Reply(text)


def help_text(note_prefix: str) -> str:
    return HELP.format(prefix=note_prefix)

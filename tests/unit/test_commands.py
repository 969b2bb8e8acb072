"""``bridge/commands.py``: what a team-side reply means, and the help that names the note prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.commands import Command, CommandCall, Note, Reply, help_text, interpret
from tests.unit import PROPERTY

C = Command

# text → meaning, with the default note prefix "//"
DEFAULT_PREFIX: dict[str, Reply | Note | CommandCall] = {
    # every command, bare
    "!close": CommandCall(C.CLOSE, "", "!close"),
    "!claim": CommandCall(C.CLAIM, "", "!claim"),
    "!transfer": CommandCall(C.TRANSFER, "", "!transfer"),
    "!s": CommandCall(C.SNIPPET, "", "!s"),
    "!show": CommandCall(C.SHOW, "", "!show"),
    "!bye": CommandCall(C.BYE, "", "!bye"),
    "!help": CommandCall(C.HELP, "", "!help"),
    "!invite": CommandCall(C.INVITE, "", "!invite"),
    # with arguments, trimmed; the text after the word is kept as typed inside
    "!transfer sales": CommandCall(C.TRANSFER, "sales", "!transfer sales"),
    "!transfer    sales  ": CommandCall(C.TRANSFER, "sales", "!transfer    sales"),
    "!s greeting": CommandCall(C.SNIPPET, "greeting", "!s greeting"),
    "!invite <@U0BOB>": CommandCall(C.INVITE, "<@U0BOB>", "!invite <@U0BOB>"),
    "!invite Bob Smith": CommandCall(C.INVITE, "Bob Smith", "!invite Bob Smith"),
    "!show https://example.org/a b c": CommandCall(
        C.SHOW, "https://example.org/a b c", "!show https://example.org/a b c"
    ),
    "!show https://example.org\nsee here": CommandCall(
        C.SHOW, "https://example.org\nsee here", "!show https://example.org\nsee here"
    ),
    # case does not matter for the word; `typed` keeps what was typed
    "!CLOSE": CommandCall(C.CLOSE, "", "!CLOSE"),
    "!Transfer Sales": CommandCall(C.TRANSFER, "Sales", "!Transfer Sales"),
    "!S Greeting": CommandCall(C.SNIPPET, "Greeting", "!S Greeting"),
    # surrounding whitespace is not part of the command
    "  !close  ": CommandCall(C.CLOSE, "", "!close"),
    "\n\t!claim\n": CommandCall(C.CLAIM, "", "!claim"),
    # an unknown word is still a command (answered with help), never sent to the visitor
    "!closee": CommandCall(None, "", "!closee"),
    "!frobnicate now": CommandCall(None, "now", "!frobnicate now"),
    "!!": CommandCall(None, "", "!!"),
    "!?": CommandCall(None, "", "!?"),
    # `!` alone, or followed by whitespace, is an ordinary reply (kept exactly as typed)
    "!": Reply("!"),
    "  !  ": Reply("  !  "),
    "! close": Reply("! close"),
    "!\tclose": Reply("!\tclose"),
    "!\nclose": Reply("!\nclose"),
    # a `!` that does not start the reply is just punctuation
    "great!": Reply("great!"),
    "thanks !close": Reply("thanks !close"),
    # notes: the prefix starts the (stripped) reply; the note keeps the prefix
    "// internal": Note("// internal"),
    "//internal": Note("//internal"),
    "   // after spaces  ": Note("// after spaces"),
    "//": Note("//"),
    "// !close": Note("// !close"),
    "/ one slash": Reply("/ one slash"),
    "see https://example.org//path": Reply("see https://example.org//path"),
    # an ordinary reply keeps its whitespace (code blocks, indentation)
    "hello": Reply("hello"),
    "  indented\n  lines  ": Reply("  indented\n  lines  "),
    "": Reply(""),
    "   ": Reply("   "),
}


@pytest.mark.parametrize(("text", "meaning"), DEFAULT_PREFIX.items(), ids=repr)
def test_interpret_with_the_default_prefix(text: str, meaning: Reply | Note | CommandCall) -> None:
    assert interpret(text, "//") == meaning


# (text, prefix) → meaning, with other configured prefixes
OTHER_PREFIXES: dict[tuple[str, str], Reply | Note | CommandCall] = {
    (">> internal", ">>"): Note(">> internal"),
    ("  >>internal", ">>"): Note(">>internal"),
    ("> quoted", ">>"): Reply("> quoted"),
    ("// not a note here", ">>"): Reply("// not a note here"),
    ("# internal", "#"): Note("# internal"),
    ("#internal", "#"): Note("#internal"),
    ("#1 priority", "#"): Note("#1 priority"),
    ("!close", "#"): CommandCall(C.CLOSE, "", "!close"),
    ("note: check the invoice", "note:"): Note("note: check the invoice"),
    ("Note: case matters for the prefix", "note:"): Reply("Note: case matters for the prefix"),
}


@pytest.mark.parametrize(("case", "meaning"), OTHER_PREFIXES.items(), ids=repr)
def test_interpret_with_a_configured_prefix(case: tuple[str, str], meaning: Reply | Note | CommandCall) -> None:
    text, prefix = case
    assert interpret(text, prefix) == meaning


def test_every_command_has_a_row() -> None:
    """A new command without a row here fails: the table above is the commands' specification."""
    bare = {m.command for m in DEFAULT_PREFIX.values() if isinstance(m, CommandCall) and m.typed == f"!{m.command}"}
    assert bare == set(Command)


HELP_PREFIXES = ["//", ">>", "#", "note:", "%%"]


@pytest.mark.parametrize("prefix", HELP_PREFIXES)
def test_help_names_the_configured_prefix(prefix: str) -> None:
    text = help_text(prefix)
    assert f"Start a reply with {prefix} for an internal note" in text
    if prefix != "//":
        assert "//" not in text


def test_help_lists_every_command() -> None:
    text = help_text("//")
    for command in Command:
        assert f"!{command.value}" in text


# --- properties ---------------------------------------------------------------------------------

words = st.text(st.characters(codec="utf-8"), max_size=40)
prefixes = st.sampled_from(["//", ">>", "#", "note:"])


@PROPERTY
@given(text=words, prefix=prefixes)
def test_interpret_is_total_and_reply_keeps_the_text(text: str, prefix: str) -> None:
    meaning = interpret(text, prefix)
    match meaning:
        case Reply(kept):
            assert kept == text
        case Note(note):
            assert note == text.strip() and note.startswith(prefix)
        case CommandCall(_, args, typed):
            assert typed == text.strip() and typed.startswith("!")
            assert args == args.strip()


@PROPERTY
@given(command=st.sampled_from(list(Command)), args=words, upper=st.booleans(), padding=st.text(" \t\n", max_size=3))
def test_a_known_command_is_found_whatever_its_case_and_padding(
    command: Command, args: str, upper: bool, padding: str
) -> None:
    word = command.value.upper() if upper else command.value
    typed = f"!{word} {args}" if args.strip() else f"!{word}"
    meaning = interpret(padding + typed + padding, "//")
    assert meaning == CommandCall(command, args.strip(), typed.strip())


@pytest.mark.parametrize("typed", ["!transfer\tsales", "!transfer\nsales", "!transfer\u00a0sales", "!transfer  sales"])
def test_any_whitespace_separates_the_command_word(typed: str) -> None:
    assert interpret(typed, "//") == CommandCall(Command.TRANSFER, "sales", typed)

"""One rule for email addresses: what the widget API accepts, the mailer can send.

Every email field of the API (conversation start ``visitor.email``, offline message ``email``,
transcript ``email``) goes through :func:`mailable`, which is ``email-validator``'s syntax check
(no DNS look-up: ``check_deliverability=False``). It refuses what a mail server or the SMTP client
would choke on later — ``0@0.00`` (no real top-level domain), ``a,b@x.io``, quoted or bracketed
forms, ``.local``/``.test`` names — and returns the address in the one form the mailer sends: ASCII,
an internationalised domain in its ``xn--`` form. A non-ASCII local part (``ä@x.de``) is refused:
it needs SMTPUTF8, which many mail servers do not offer, so it could be accepted but never sent.

:data:`PATTERN` describes the same rule for the OpenAPI document (JSON Schema ``pattern``); it is a
looser outline (it cannot list reserved names), so what it admits may still be a 422, never a 500.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

#: the longest address SMTP carries (RFC 5321's path limit, less the angle brackets)
MAX_LENGTH = 254
EXAMPLE = "ann@example.com"

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9\u00a1-\uffff](?:[A-Za-z0-9\u00a1-\uffff-]{0,61}[A-Za-z0-9\u00a1-\uffff])?"
#: leading and trailing white space is allowed (and trimmed); the top-level domain ends with a letter
PATTERN = (
    rf"^\s*{_ATEXT}+(?:\.{_ATEXT}+)*"
    rf"@(?:{_LABEL}\.)+[A-Za-z0-9\u00a1-\uffff-]*[A-Za-z\u00a1-\uffff]\s*$"
)


class NotMailable(ValueError):
    """An address the mailer could not send to; the message says why, in plain words."""


def mailable(value: str) -> str:
    """``value`` as the mailer sends it (trimmed, ASCII), or :class:`NotMailable` saying why it cannot be."""
    address = value.strip()
    try:
        found = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise NotMailable(f"not an email address we can send to ({exc}); e.g. {EXAMPLE}") from None
    ascii_email = found.ascii_email
    if ascii_email is None:  # allow_smtputf8=False: email-validator refuses these itself
        raise NotMailable(f"an address with letters outside ASCII before the @ cannot be mailed; e.g. {EXAMPLE}")
    return ascii_email

"""The schema. Changes go through an Alembic migration in ``bridge/migrations/versions``."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = DateTime(timezone=True)
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a long-lived outbox.
BigId = BigInteger().with_variant(Integer(), "sqlite")

conversation = Table(
    "conversation",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("site_id", String(64), nullable=False),
    Column("topic", String(64)),
    Column("status", String(16), nullable=False),
    # "chat", or "offline" for a message left through the offline form
    Column("kind", String(16), nullable=False, server_default="chat"),
    Column("token_hash", String(64), nullable=False),
    Column("visitor_name", String(200)),
    Column("visitor_email", String(320)),
    Column("visitor_external_id", String(200)),
    Column("locale", String(64)),
    Column("timezone", String(64)),
    Column("client_address", String(64)),
    Column("pages", JSON, nullable=False),
    Column("claimed_by", String(200)),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("created_at", TS, nullable=False),
    Column("last_activity_at", TS, nullable=False),
    # set by a visitor message no agent has answered yet: drives the first-response reminder
    Column("awaiting_reply_since", TS),
    Column("reminded_at", TS),
    Column("closed_at", TS),
    Column("rating_score", Integer),
    Column("rating_comment", Text),
    Column("rated_at", TS),
    # migration 0005: who the visitor is, as the root shows it, and the conversation craft of CONTRACT §10
    Column("user_agent", String(500)),
    #: browser, OS, device, country and city found at the start (``bridge.model.ClientFacts``)
    Column("client_facts", JSON),
    Column("language", String(8)),
    #: when the automatic greeting went out: set once, by a conditional UPDATE (``bridge/store/craft.py``)
    Column("greeted_at", TS),
    # migration 0006: reminders while the visitor waits (``bridge/reminders.py``): how many of this wait's
    # went out and when the next is due, each taken once by a conditional UPDATE; ``reminded_at`` (set by
    # the first, cleared by an agent's reply) marks the wait they count for
    Column("reminders_sent", Integer, nullable=False, default=0, server_default="0"),
    Column("next_reminder_at", TS),
    #: when the visitor was told that the team knows they wait (once per conversation)
    Column("waiting_told_at", TS),
    #: migration 0007: the visitor's last message a staff member has read (a Matrix read receipt)
    Column("team_read_seq", Integer),
    # migration 0009: returning visitors and follow-up mail (CONTRACT §8)
    #: the widget's random key for this browser (per site): links a visitor's chats when no verified id does
    Column("visitor_key", String(64)),
    #: what the root shows of the visitor's earlier chats, found at the start (``bridge.model.Returning``)
    Column("returning_chats", JSON),  # "returning" is an SQL keyword
    #: the first agent reply since the last follow-up mail that may still need one (``bridge/follow_up.py``);
    #: taken once by a conditional UPDATE
    Column("follow_up_since", TS),
    #: when this wait's follow-up mail went out (None: none since the visitor was last back)
    Column("followed_up_at", TS),
    #: the last seq a follow-up mail covered
    Column("follow_up_seq", Integer),
    Index("ix_conversation_open_activity", "status", "last_activity_at"),
    #: retention: the closed conversations older than the cut-off
    Index("ix_conversation_closed_at", "closed_at"),
    Index("ix_conversation_site_external", "site_id", "visitor_external_id"),
    Index("ix_conversation_site_visitor_key", "site_id", "visitor_key"),
    Index("ix_conversation_follow_up", "follow_up_since"),
)

message = Table(
    "message",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("conversation_id", String(64), ForeignKey("conversation.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("author_name", String(200), nullable=False),
    Column("author_avatar_url", String(2000)),
    Column("author_remote_id", String(300)),
    Column("text", Text, nullable=False),
    Column("client_msg_id", String(100)),
    Column("origin", String(32), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("edited_at", TS),
    Column("deleted", Boolean, nullable=False, default=False),
    #: migration 0007: an agent's formatting, the sanitized HTML subset (``text`` is the plain form)
    Column("html", Text),
    #: migration 0007: when the visitor had it on screen (an agent's message; marked in the team chat once)
    Column("seen_at", TS),
    #: migration 0008: the message's files as the API shows them (``[{id, name, size, content_type}]``);
    #: their bytes are in ``attachment``/``attachment_chunk``
    Column("attachments", JSON),
    UniqueConstraint("conversation_id", "seq", name="uq_message_conversation_seq"),
    UniqueConstraint("conversation_id", "client_msg_id", name="uq_message_conversation_client_msg"),
)

thread_link = Table(
    "thread_link",
    metadata,
    Column("conversation_id", String(64), ForeignKey("conversation.id"), primary_key=True),
    Column("endpoint", String(32), primary_key=True),
    Column("destination", String(200), nullable=False),
    Column("thread_ref", String(300)),
    UniqueConstraint("endpoint", "thread_ref", name="uq_thread_link_endpoint_thread"),
)

# One row per remote event the bridge has seen or made: the inbound dedupe key, and the map from a
# remote message back to ours. message_id is empty for notes and commands (seen, nothing stored).
message_link = Table(
    "message_link",
    metadata,
    Column("endpoint", String(32), primary_key=True),
    Column("remote_id", String(300), primary_key=True),
    Column("message_id", String(64), ForeignKey("message.id")),
    Column("conversation_id", String(64), ForeignKey("conversation.id")),
    Column("created_at", TS, nullable=False),
    #: a conversation's links, for erasure
    Index("ix_message_link_conversation", "conversation_id"),
)

# The outbox: written in the same transaction as what it delivers.
delivery = Table(
    "delivery",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # the lane: a conversation's id, or an erasure lane's (``erased-…``) that outlives its conversation,
    # so no foreign key (migration 0004); a conversation's deliveries are deleted with it
    Column("conversation_id", String(64), nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("message_id", String(64), ForeignKey("message.id")),
    Column("payload", JSON),
    Column("done", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    # an attempt started and its outcome is unknown (crash, timeout): look before sending again
    Column("in_doubt", Boolean, nullable=False, default=False),
    Column("next_attempt_at", TS, nullable=False),
    Column("last_error", Text),
    Column("remote_id", String(300)),
    #: the other posts it became (``Sent.more``): with ``remote_id``, every copy an erasure removes
    Column("remote_parts", JSON),
    Column("created_at", TS, nullable=False),
    Column("done_at", TS),
    Index("ix_delivery_pending", "done", "endpoint", "conversation_id", "id"),
    #: a conversation's deliveries, for erasure
    Index("ix_delivery_conversation", "conversation_id"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", TS, nullable=False),
)

#: the instances on this database, each writing a heartbeat (doctor lists them, with their clock skew)
instance = Table(
    "instance",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", TS, nullable=False),
    #: the instance's own clock at its last heartbeat …
    Column("heartbeat_at", TS, nullable=False),
    #: … and the database's at the same moment: the difference is the instance's clock skew
    Column("seen_at", TS, nullable=False),
    #: whether it hears the other instances (its LISTEN connection works)
    Column("listening", Boolean, nullable=False),
)

#: one row per counted use of a shared limit (``bridge/store/limits.py``): a sliding window is the rows
#: of its (bucket, key) younger than the window. A refused use is not counted.
rate_hit = Table(
    "rate_hit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("bucket", String(32), nullable=False),
    Column("key", String(100), nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_rate_hit_bucket_key_at", "bucket", "key", "at"),
    #: the periodic purge of old hits, whatever their key
    Index("ix_rate_hit_at", "at"),
)

#: the widget sockets open right now, by client address, each held by one instance (which removes its
#: rows as its sockets close and when it stops; the others remove the rows of an instance that is gone)
open_socket = Table(
    "open_socket",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("instance_id", String(32), nullable=False),
    Column("address", String(100), nullable=False),
    Column("opened_at", TS, nullable=False),
    Index("ix_open_socket_address", "address"),
)

#: migration 0006: a site an agent set away (``/sitechat away``) shows offline in the widget until set back;
#: no row is a site as its office hours say. Kept in the database, so every instance answers alike.
site_presence = Table(
    "site_presence",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("away", Boolean, nullable=False),
    #: who set it, as the team chat names them, and when
    Column("set_by", String(200), nullable=False),
    Column("set_at", TS, nullable=False),
)

#: migration 0008: a file of a conversation (CONTRACT §7), a visitor's upload or a team member's file the
#: bridge fetched; offered only once ``complete`` (an upload cut off halfway never is)
attachment = Table(
    "attachment",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("conversation_id", String(64), ForeignKey("conversation.id")),
    #: the message it was sent with (none yet: uploaded, not sent)
    Column("message_id", String(64), ForeignKey("message.id")),
    Column("name", String(255), nullable=False),
    #: decided from the bytes, never from the name or the client's word
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    #: ``widget``, ``slack``, ``matrix``, ``report``, ``avatar`` (a team member's photo, kept: ``bridge/faces.py``)
    Column("origin", String(32), nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_attachment_conversation", "conversation_id"),
    #: the purge of uploads never finished or never sent
    Index("ix_attachment_created_at", "complete", "created_at"),
)

#: an attachment's bytes, in pieces written as they arrive and read back one at a time
attachment_chunk = Table(
    "attachment_chunk",
    metadata,
    Column("attachment_id", String(64), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

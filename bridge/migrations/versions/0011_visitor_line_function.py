"""a visitor's line in one round trip on PostgreSQL: ``sitechat_visitor_line``

``bridge.visitor_side.VisitorSide.post_visitor_message`` for a plain line (no files, no reopening) in one
call instead of a transaction of seven round trips (BEGIN, lock, resend check, the message limit, the
line stored and queued, NOTIFY, COMMIT), each of which costs the bridge more CPU than the statement costs
the server (``bench/cpu_per_message.py``). Called outside any transaction, the call is the transaction.

In order, as the unit of work does it (and, on SQLite, ``bridge/store/sqlite_lines.py``):
1. lock the conversation's row (``gone``: there is none);
2. the message stored for this ``client_msg_id`` already (``resent``: a resend costs no place);
3. ``closed``: the conversation is not open;
4. ``first``: the visitor's first line in a chat, while nobody owes them an answer — it may tell the
   visitor their place in line (``bridge/craft.py``), in the same transaction: the caller stores it the
   other way (nothing is counted here);
5. count the use against the conversation's message limit, ``sitechat_rate_hit`` (migration 0010), when
   one is given (``limited``, with the oldest counted use: nothing is stored);
6. ``stored``: the next seq, the visitor's first unanswered line starting the first-response clock, the
   message, and a ``message`` delivery for every thread the conversation has; and, given ``notify_as``
   (this instance), the NOTIFY that tells the other instances — the line's seq, and to wake their delivery
   workers if it was queued — as ``bridge.store.notify.payloads`` writes it, sent with the commit.

A function, not one statement: a statement's snapshot is taken before it waits for the row lock, so it
would miss the line (or the thread link) the lock's previous holder committed. A VOLATILE function's
statements each take a new snapshot (READ COMMITTED), all of them after the lock.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 22:10:00
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SIGNATURE = (
    "sitechat_visitor_line(varchar, varchar, text, varchar, varchar, timestamptz, varchar, varchar, varchar, varchar,"
    " bigint, varchar, varchar, integer, timestamptz, timestamptz)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION sitechat_visitor_line(
            line_id varchar, cid varchar, line_text text, line_client_msg_id varchar, line_origin varchar,
            at timestamptz, delivery_kind varchar, anonymous varchar, notify_channel varchar, notify_as varchar,
            rate_lock bigint, rate_bucket varchar, rate_key varchar, rate_most integer, rate_since timestamptz,
            rate_at timestamptz,
            OUT outcome varchar, OUT found_id varchar, OUT oldest timestamptz, OUT line_seq integer,
            OUT author varchar, OUT endpoints varchar[]
        )
        LANGUAGE plpgsql VOLATILE
        AS $$
        DECLARE
            conv conversation;
        BEGIN
            SELECT * INTO conv FROM conversation WHERE conversation.id = cid FOR UPDATE;
            IF NOT FOUND THEN
                outcome := 'gone';
                RETURN;
            END IF;
            SELECT message.id INTO found_id FROM message
                WHERE message.conversation_id = cid AND message.client_msg_id = line_client_msg_id;
            IF found_id IS NOT NULL THEN
                outcome := 'resent';
                RETURN;
            END IF;
            IF conv.status <> 'open' THEN
                outcome := 'closed';
                RETURN;
            END IF;
            IF conv.kind = 'chat' AND conv.awaiting_reply_since IS NULL AND NOT EXISTS (
                SELECT 1 FROM message WHERE message.conversation_id = cid AND message.role = 'visitor'
            ) THEN
                outcome := 'first';
                RETURN;
            END IF;
            IF rate_lock IS NOT NULL THEN
                oldest := sitechat_rate_hit(rate_lock, rate_bucket, rate_key, rate_most, rate_since, rate_at);
                IF oldest IS NOT NULL THEN
                    outcome := 'limited';
                    RETURN;
                END IF;
            END IF;
            UPDATE conversation SET last_seq = conversation.last_seq + 1, last_activity_at = at,
                    awaiting_reply_since = coalesce(conversation.awaiting_reply_since, at)
                WHERE conversation.id = cid
                RETURNING conversation.last_seq INTO line_seq;
            author := coalesce(nullif(conv.visitor_name, ''), anonymous);
            INSERT INTO message (id, conversation_id, seq, role, author_name, text, client_msg_id, origin,
                    created_at, deleted)
                VALUES (line_id, cid, line_seq, 'visitor', author, line_text, line_client_msg_id, line_origin,
                    at, false);
            WITH queued AS (
                INSERT INTO delivery (conversation_id, endpoint, kind, message_id, done, attempts, in_doubt,
                        next_attempt_at, created_at)
                    SELECT cid, thread_link.endpoint, delivery_kind, line_id, false, 0, false, at, at
                    FROM thread_link WHERE thread_link.conversation_id = cid
                    ORDER BY thread_link.endpoint
                    RETURNING delivery.endpoint
            )
            SELECT coalesce(array_agg(queued.endpoint), '{}') INTO endpoints FROM queued;
            IF notify_as IS NOT NULL THEN
                PERFORM pg_notify(notify_channel, json_build_object(
                    'i', notify_as,
                    's', json_build_array(json_build_array(cid, json_build_object('k', 'message', 'seq', line_seq))),
                    'w', cardinality(endpoints) > 0
                )::text);
            END IF;
            outcome := 'stored';
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")

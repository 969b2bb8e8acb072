"""an agent's plain reply in one round trip on PostgreSQL: ``sitechat_agent_line``

``bridge.team_side.TeamSide.handle`` for a plain reply (no files, no command, no note) from someone the
visitor has met already, in one call instead of a transaction of six round trips (BEGIN, the thread's
conversation locked with "is the event recorded", the line stored and queued, the event recorded, NOTIFY,
COMMIT). Besides the CPU, the lock is then held for the server's microseconds instead of six round trips
of a busy bridge: at 200 replies/s over 16 conversations, every reply waited for the one before in its
conversation whenever the bridge's loop fell behind for a moment (``bench/reply_latency.py``).

In order, as the unit of work does it (which still runs on SQLite, and for every other event):
1. the conversation of the event's thread — its current one, or one it had before a transfer (the
   ``root:`` key) — must be ``expected`` (the caller's guess from an earlier event; ``other`` if not);
2. lock it, then ``known``: the event is recorded already (a retry, a replay, our own post's echo);
3. ``other``: the conversation is not an open chat (the unit of work tells the agent so);
4. ``stored``: the next seq, nobody waiting any more and the reminders starting over, and for a visitor
   who gave an address the follow-up clock started unless it runs (``bridge/follow_up.py``
   ``arm_needed``); the message; a ``message`` delivery for every thread but the event's own; the event
   recorded with the message; the seconds the visitor waited if this is the conversation's first response
   (``first_wait``, for the metrics, as ``bridge.store.stats`` defines it); and, given ``notify_as``, the
   NOTIFY for the other instances as ``bridge.store.notify.payloads`` writes it, sent with the commit.

A function for the reason ``sitechat_visitor_line`` (migration 0011) is one: its statements each take a
snapshot after the lock.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 22:50:00
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SIGNATURE = (
    "sitechat_agent_line(varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar,"
    " text, text, timestamptz, varchar, varchar, varchar)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION sitechat_agent_line(
            ev_endpoint varchar, ev_thread varchar, ev_root varchar, ev_remote_id varchar, expected varchar,
            line_id varchar, author_name varchar, author_avatar varchar, author_remote varchar,
            line_text text, line_html text, at timestamptz, delivery_kind varchar,
            notify_channel varchar, notify_as varchar,
            OUT outcome varchar, OUT line_seq integer, OUT endpoints varchar[], OUT site varchar,
            OUT first_wait double precision
        )
        LANGUAGE plpgsql VOLATILE
        AS $$
        DECLARE
            cid varchar;
            conv conversation;
            first_visitor_seq integer;
            first_visitor_at timestamptz;
        BEGIN
            cid := coalesce(
                (SELECT thread_link.conversation_id FROM thread_link
                    WHERE thread_link.endpoint = ev_endpoint AND thread_link.thread_ref = ev_thread),
                (SELECT message_link.conversation_id FROM message_link
                    WHERE message_link.endpoint = ev_endpoint AND message_link.remote_id = ev_root LIMIT 1)
            );
            IF cid IS DISTINCT FROM expected THEN
                outcome := 'other';
                RETURN;
            END IF;
            SELECT * INTO conv FROM conversation WHERE conversation.id = cid FOR UPDATE;
            IF NOT FOUND THEN
                outcome := 'other';
                RETURN;
            END IF;
            IF EXISTS (SELECT 1 FROM message_link
                    WHERE message_link.endpoint = ev_endpoint AND message_link.remote_id = ev_remote_id) THEN
                outcome := 'known';
                RETURN;
            END IF;
            IF conv.status <> 'open' OR conv.kind <> 'chat' THEN
                outcome := 'other';
                RETURN;
            END IF;
            site := conv.site_id;
            UPDATE conversation SET last_seq = conversation.last_seq + 1, last_activity_at = at,
                    awaiting_reply_since = NULL, reminded_at = NULL,
                    follow_up_since = CASE WHEN coalesce(conversation.visitor_email, '') <> ''
                        THEN coalesce(conversation.follow_up_since, at) ELSE conversation.follow_up_since END
                WHERE conversation.id = cid
                RETURNING conversation.last_seq INTO line_seq;
            INSERT INTO message (id, conversation_id, seq, role, author_name, author_avatar_url, author_remote_id,
                    text, origin, created_at, deleted, html)
                VALUES (line_id, cid, line_seq, 'agent', author_name, author_avatar, author_remote,
                    line_text, ev_endpoint, at, false, line_html);
            WITH queued AS (
                INSERT INTO delivery (conversation_id, endpoint, kind, message_id, done, attempts, in_doubt,
                        next_attempt_at, created_at)
                    SELECT cid, thread_link.endpoint, delivery_kind, line_id, false, 0, false, at, at
                    FROM thread_link
                    WHERE thread_link.conversation_id = cid AND thread_link.endpoint <> ev_endpoint
                    ORDER BY thread_link.endpoint
                    RETURNING delivery.endpoint
            )
            SELECT coalesce(array_agg(queued.endpoint), '{}') INTO endpoints FROM queued;
            -- under the lock, after "known": a conflict here fails the call, and nothing is stored
            INSERT INTO message_link (endpoint, remote_id, message_id, conversation_id, created_at)
                VALUES (ev_endpoint, ev_remote_id, line_id, cid, at);
            -- the conversation's first response (``bridge.store.stats``: the first agent message after the
            -- visitor's first), when the visitor was waiting: how long after the visitor's first message
            IF conv.awaiting_reply_since IS NOT NULL THEN
                SELECT min(message.seq), min(message.created_at) INTO first_visitor_seq, first_visitor_at
                    FROM message WHERE message.conversation_id = cid AND message.role = 'visitor';
                IF first_visitor_seq IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM message WHERE message.conversation_id = cid AND message.role = 'agent'
                        AND message.seq > first_visitor_seq AND message.seq < line_seq
                ) THEN
                    first_wait := greatest(0, extract(epoch FROM at - first_visitor_at));
                END IF;
            END IF;
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

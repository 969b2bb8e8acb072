"""one round trip per counted use on PostgreSQL: ``sitechat_rate_hit``

``bridge.store.limits.SharedLimits.hit`` in one call instead of four statements: take the (bucket, key)'s
transaction advisory lock, remove its uses that have left the window, count the newest ``most`` of the
others, and store this use only when fewer than ``most`` are counted. It returns NULL when the use was
counted, else the oldest of the ``most`` newest uses (a place frees up when it leaves the window).

A function, not one statement with CTEs: a statement's snapshot is taken before it waits for a lock in
it, so it would not see the use the lock's previous holder committed and could admit one too many. A
VOLATILE function's statements each take a new snapshot (READ COMMITTED), the count's after the lock.
SQLite (one instance, one writer) needs none of this.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 16:40:00
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SIGNATURE = "sitechat_rate_hit(bigint, varchar, varchar, integer, timestamptz, timestamptz)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION sitechat_rate_hit(
            lock_key bigint, hit_bucket varchar, hit_key varchar, most integer, since timestamptz, hit_at timestamptz
        ) RETURNS timestamptz
        LANGUAGE plpgsql VOLATILE
        AS $$
        DECLARE
            counted integer;
            oldest timestamptz;
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_key);
            DELETE FROM rate_hit
                WHERE rate_hit.bucket = hit_bucket AND rate_hit.key = hit_key AND rate_hit.at <= since;
            SELECT count(*), min(newest.at) INTO counted, oldest FROM (
                SELECT rate_hit.at FROM rate_hit
                WHERE rate_hit.bucket = hit_bucket AND rate_hit.key = hit_key
                ORDER BY rate_hit.at DESC LIMIT most
            ) AS newest;
            IF counted >= most THEN
                RETURN oldest;
            END IF;
            INSERT INTO rate_hit (bucket, key, at) VALUES (hit_bucket, hit_key, hit_at);
            RETURN NULL;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")

"""returning visitors and follow-up mail (CONTRACT §8)

``conversation.visitor_key``: the widget's random key for the browser (per site), indexed with the site, so
the root of a new chat can say how many earlier chats the visitor had; ``conversation.returning``: what
the root shows of them, found once at the start. ``follow_up_since`` / ``followed_up_at`` /
``follow_up_seq``: an agent's reply the visitor has not seen goes to them by email, once per wait.

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-12 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("visitor_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("returning_chats", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("follow_up_since", TS, nullable=True))
        batch.add_column(sa.Column("followed_up_at", TS, nullable=True))
        batch.add_column(sa.Column("follow_up_seq", sa.Integer(), nullable=True))
    op.create_index("ix_conversation_site_visitor_key", "conversation", ["site_id", "visitor_key"])
    op.create_index("ix_conversation_follow_up", "conversation", ["follow_up_since"])


def downgrade() -> None:
    op.drop_index("ix_conversation_follow_up", "conversation")
    op.drop_index("ix_conversation_site_visitor_key", "conversation")
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("follow_up_seq")
        batch.drop_column("followed_up_at")
        batch.drop_column("follow_up_since")
        batch.drop_column("returning_chats")
        batch.drop_column("visitor_key")

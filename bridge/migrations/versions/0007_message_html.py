"""rich messages (CONTRACT §7): a message's formatting, and read state both ways

``message.html`` holds an agent's formatting (bold, lists, links…) as the sanitized subset the widget
renders; ``text`` stays the plain form; empty for plain messages and always for the visitor's.
``message.seen_at``: when the visitor had an agent's message on screen (the team chat marks it once).
``conversation.team_read_seq``: the visitor's last message a staff member has read (the widget's "Seen").

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-04 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("html", sa.Text(), nullable=True))
        batch.add_column(sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("team_read_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("team_read_seq")
    with op.batch_alter_table("message") as batch:
        batch.drop_column("seen_at")
        batch.drop_column("html")

"""the agent's day: reminders counted once across instances, a site's away state, one honest line to the visitor

``conversation.reminders_sent`` and ``next_reminder_at`` hold where a waiting visitor's reminders stand
(``reminded_at``, set by the first and cleared by an agent's reply, marks the wait they count for);
``waiting_told_at`` is when the visitor was told the team knows. ``site_presence`` remembers a site set
away (or back) by ``/sitechat away|back``, and by whom, so every instance answers the widget alike.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-28 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("reminders_sent", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_reminder_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("waiting_told_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "site_presence",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("away", sa.Boolean(), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site_id", name="pk_site_presence"),
    )


def downgrade() -> None:
    op.drop_table("site_presence")
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("waiting_told_at")
        batch.drop_column("next_reminder_at")
        batch.drop_column("reminders_sent")

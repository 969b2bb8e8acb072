"""files both ways (CONTRACT §7): attachments kept in the database, so every instance serves them

``attachment``: one file, a visitor's upload or a team member's file fetched by the bridge, tied to its
conversation (and, once sent, its message); ``complete`` is set when the last byte is stored (an upload cut
off halfway is never offered). ``attachment_chunk``: its bytes in pieces, written as they arrive, so a
file is never held whole in memory. ``message.attachments``: the message's files as the API shows them.

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-11 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "attachment",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=True),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversation.id"], name="fk_attachment_conversation_id_conversation"
        ),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"], name="fk_attachment_message_id_message"),
        sa.PrimaryKeyConstraint("id", name="pk_attachment"),
    )
    op.create_index("ix_attachment_conversation", "attachment", ["conversation_id"])
    op.create_index("ix_attachment_created_at", "attachment", ["complete", "created_at"])
    op.create_table(
        "attachment_chunk",
        sa.Column("attachment_id", sa.String(64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("attachment_id", "n", name="pk_attachment_chunk"),
    )
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("attachments", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("attachments")
    op.drop_table("attachment_chunk")
    op.drop_index("ix_attachment_created_at", "attachment")
    op.drop_index("ix_attachment_conversation", "attachment")
    op.drop_table("attachment")

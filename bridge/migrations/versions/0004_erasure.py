"""erasure: deliveries that outlive their conversation, every post a delivery became, retention's index

The erasure of a conversation (retention, ``sitechat forget``) deletes its rows and queues the removal
of the bridge's posts in team chat on lanes of their own, so ``delivery.conversation_id`` is a lane id
and no longer a foreign key. ``delivery.remote_parts`` keeps the posts beyond ``remote_id`` (the
earlier parts of a long text), so that every copy is found.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-17 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: as in ``bridge/store/tables.py``: SQLite's batch mode finds the constraint by this name
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    with op.batch_alter_table("delivery", naming_convention=NAMING) as batch:
        batch.drop_constraint("fk_delivery_conversation_id_conversation", type_="foreignkey")
        batch.add_column(sa.Column("remote_parts", sa.JSON(), nullable=True))
        batch.create_index("ix_delivery_conversation", ["conversation_id"], unique=False)
    op.create_index("ix_message_link_conversation", "message_link", ["conversation_id"], unique=False)
    op.create_index("ix_conversation_closed_at", "conversation", ["closed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_conversation_closed_at", table_name="conversation")
    op.drop_index("ix_message_link_conversation", table_name="message_link")
    # erasure lanes have no conversation: they must go before the foreign key can come back
    op.execute("DELETE FROM delivery WHERE conversation_id NOT IN (SELECT id FROM conversation)")
    with op.batch_alter_table("delivery", naming_convention=NAMING) as batch:
        batch.drop_index("ix_delivery_conversation")
        batch.drop_column("remote_parts")
        batch.create_foreign_key(
            "fk_delivery_conversation_id_conversation", "conversation", ["conversation_id"], ["id"]
        )

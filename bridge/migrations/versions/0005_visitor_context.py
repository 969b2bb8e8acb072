"""who the visitor is and the conversation craft: user agent, client facts, language, greeting once

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-24 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("user_agent", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("client_facts", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("greeted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("greeted_at")
        batch.drop_column("language")
        batch.drop_column("client_facts")
        batch.drop_column("user_agent")

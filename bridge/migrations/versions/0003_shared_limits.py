"""abuse limits shared by the instances: rate-limit hits and open sockets

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rate_hit",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("bucket", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_hit")),
    )
    op.create_index("ix_rate_hit_bucket_key_at", "rate_hit", ["bucket", "key", "at"], unique=False)
    op.create_index("ix_rate_hit_at", "rate_hit", ["at"], unique=False)
    op.create_table(
        "open_socket",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open_socket")),
    )
    op.create_index("ix_open_socket_address", "open_socket", ["address"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_open_socket_address", table_name="open_socket")
    op.drop_table("open_socket")
    op.drop_index("ix_rate_hit_at", table_name="rate_hit")
    op.drop_index("ix_rate_hit_bucket_key_at", table_name="rate_hit")
    op.drop_table("rate_hit")

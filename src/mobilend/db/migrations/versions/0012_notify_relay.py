"""notification relay: when a pending message is next due, the masked recipient and the
provider's reference kept after sending, and an index for the relay's scan

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        # NULL = due at once (rows enqueued before the relay existed, or by raw inserts)
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("recipient_hint", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("channel_ref", sa.String(length=120), nullable=True))
        batch_op.create_index("ix_outbox_messages_due", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_messages_due")
        batch_op.drop_column("channel_ref")
        batch_op.drop_column("recipient_hint")
        batch_op.drop_column("next_attempt_at")

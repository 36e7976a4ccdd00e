"""index for the history cache's freshness check

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_redacted", "messages", ["conversation_id", "redacted"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_redacted", table_name="messages")

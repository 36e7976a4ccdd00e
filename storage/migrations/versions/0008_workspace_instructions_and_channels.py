"""workspace instructions and the channel allow-list and deny-list

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, so existing workspaces need no backfill: NULL reads as no instructions and no lists
    # (Haven answers in every channel, as before).
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("instructions", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("allowed_channels", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("denied_channels", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("denied_channels")
        batch_op.drop_column("allowed_channels")
        batch_op.drop_column("instructions")

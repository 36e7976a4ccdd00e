"""soft risk marks and the source of the hard one

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing at_risk marks stay hard (they were set by any risk signal); their source is unknown.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("risk_source", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("soft_risk_cues", sa.Text(), nullable=True))


def downgrade() -> None:
    # Going back folds the soft mark into the one mark the old schema knows: safe, never looser.
    conversations = sa.table("conversations", sa.column("at_risk"), sa.column("soft_risk_cues"))
    op.execute(
        conversations.update().where(conversations.c.soft_risk_cues.is_not(None)).values(at_risk=sa.true())
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("soft_risk_cues")
        batch_op.drop_column("risk_source")

"""one feedback record per person per ending, with the time of its last edit

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FEEDBACK = sa.table(
    "feedback",
    sa.column("id", sa.Integer()),
    sa.column("conversation_id", sa.String()),
    sa.column("user_id", sa.String()),
    sa.column("comment", sa.Text()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    _collapse_duplicates()
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_unique_constraint("uq_feedback_user", ["conversation_id", "user_id"])


def _collapse_duplicates() -> None:
    """One row per (conversation, person): the first report's row and time stay, holding the latest
    comment anyone gave (a later report without one did not take it back), edited at the last report.

    Times are copied inside the database, never through Python, so they keep the format they were
    written in (SQLite stores them as text)."""
    f = _FEEDBACK.c
    conn = op.get_bind()
    conn.execute(_FEEDBACK.update().values(updated_at=f.created_at))
    rows = conn.execute(
        sa.select(f.id, f.conversation_id, f.user_id, f.comment).order_by(f.created_at, f.id)
    ).all()
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.conversation_id, row.user_id), []).append(row)
    for reports in groups.values():
        if len(reports) == 1:
            continue
        first, last = reports[0], reports[-1]
        commented = [r for r in reports if r.comment is not None]
        last_time = sa.select(f.created_at).where(f.id == last.id).scalar_subquery()
        conn.execute(
            _FEEDBACK.update()
            .where(f.id == first.id)
            .values(comment=commented[-1].comment if commented else None, updated_at=last_time)
        )
        conn.execute(_FEEDBACK.delete().where(f.id.in_([r.id for r in reports[1:]])))


def downgrade() -> None:
    # Going back keeps each person's one record (the old schema allowed several; it needs none).
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_constraint("uq_feedback_user", type_="unique")
        batch_op.drop_column("updated_at")

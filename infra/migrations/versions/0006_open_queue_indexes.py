"""case queue: partial indexes over open cases in queue order (per street and district-wide)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 00:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('awaiting_verification', 'awaiting_dispute_review', 'rectifying', 'awaiting_review')"


def upgrade() -> None:
    op.create_index('alert_case_open_street_queue', 'alert_case', ['street_office_id', 'next_due_at', 'case_id'],
                    unique=False, postgresql_where=sa.text(OPEN))
    op.create_index('alert_case_open_queue', 'alert_case', ['next_due_at', 'case_id'], unique=False,
                    postgresql_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index('alert_case_open_queue', table_name='alert_case')
    op.drop_index('alert_case_open_street_queue', table_name='alert_case')

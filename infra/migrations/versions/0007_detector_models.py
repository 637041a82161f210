"""detector model registry

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('detector_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('runtime', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('layout', sa.String(length=32), nullable=False),
    sa.Column('input_width', sa.Integer(), nullable=False),
    sa.Column('input_height', sa.Integer(), nullable=False),
    sa.Column('classes', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('class_map', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('areas', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('licence', sa.String(length=200), nullable=False),
    sa.Column('registered_by', sa.String(length=100), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'version', name='detector_model_name_version')
    )
    op.create_index(op.f('ix_detector_model_name'), 'detector_model', ['name'], unique=False)
    op.create_index(op.f('ix_detector_model_sha256'), 'detector_model', ['sha256'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_detector_model_sha256'), table_name='detector_model')
    op.drop_index(op.f('ix_detector_model_name'), table_name='detector_model')
    op.drop_table('detector_model')

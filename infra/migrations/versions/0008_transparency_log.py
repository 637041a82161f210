"""evidence transparency log, custody hash chain, exported workflow histories

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 04:20:00.000000
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_TABLES = ("transparency_leaf", "transparency_node", "transparency_checkpoint", "checkpoint_timestamp")
GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table('transparency_leaf',
    sa.Column('leaf_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('evidence_id', sa.Uuid(), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('appended_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], ),
    sa.PrimaryKeyConstraint('leaf_index'),
    sa.UniqueConstraint('evidence_id')
    )
    op.create_table('transparency_node',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('node_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'node_index')
    )
    op.create_table('transparency_checkpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('note', sa.String(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_transparency_checkpoint_tree_size'), 'transparency_checkpoint', ['tree_size'],
                    unique=False)
    op.create_table('checkpoint_timestamp',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=False),
    sa.Column('tsa_url', sa.String(length=500), nullable=False),
    sa.Column('token', sa.LargeBinary(), nullable=False),
    sa.Column('gen_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('serial_number', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['transparency_checkpoint.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_checkpoint_timestamp_checkpoint_id'), 'checkpoint_timestamp', ['checkpoint_id'],
                    unique=False)
    for table in APPEND_ONLY_TABLES:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION refuse_changes_to_append_only_table()")
    op.create_table('workflow_history_export',
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('workflow_type', sa.String(length=100), nullable=False),
    sa.Column('case_id', sa.String(length=200), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('exported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('bucket', sa.String(length=63), nullable=False),
    sa.Column('history_key', sa.String(length=300), nullable=False),
    sa.Column('history_version_id', sa.String(length=200), nullable=True),
    sa.Column('manifest_key', sa.String(length=300), nullable=False),
    sa.Column('manifest_version_id', sa.String(length=200), nullable=True),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('chain_head', sa.String(length=64), nullable=False),
    sa.Column('history_sha256', sa.String(length=64), nullable=False),
    sa.Column('build_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('code_version', sa.String(length=100), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verification', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('workflow_id')
    )
    op.create_index(op.f('ix_workflow_history_export_case_id'), 'workflow_history_export', ['case_id'],
                    unique=False)

    op.add_column('custody_event', sa.Column('prev_hash', sa.String(length=64), nullable=True))
    op.add_column('custody_event', sa.Column('row_hash', sa.String(length=64), nullable=True))
    _chain_existing_custody_rows()
    op.create_unique_constraint('custody_event_row_hash_key', 'custody_event', ['row_hash'])


def _chain_existing_custody_rows() -> None:
    """Rows written before the chain get it now, in id order (the trigger is lifted for this one migration).
    The hash is domain.transparency.custody_chain.custody_row_hash over domain.evidence.custody_chain's fields,
    frozen here as it was when the chain began."""
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, evidence_id, action, at, actor, actor_role, unit, reason, detail FROM custody_event ORDER BY id"
    )).mappings().all()
    if not rows:
        return
    op.execute("ALTER TABLE custody_event DISABLE TRIGGER custody_event_append_only")
    previous = GENESIS_HASH
    for row in rows:
        detail = row["detail"] if not isinstance(row["detail"], str) else json.loads(row["detail"])
        fields = {
            "seq": row["id"], "evidence_id": str(row["evidence_id"]), "action": row["action"],
            "at": row["at"].astimezone(UTC).isoformat(), "actor": row["actor"], "actor_role": row["actor_role"],
            "unit": row["unit"], "reason": row["reason"], "detail": detail,
        }
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                               allow_nan=False).encode("utf-8")
        row_hash = hashlib.sha256(bytes.fromhex(previous) + canonical).hexdigest()
        bind.execute(sa.text("UPDATE custody_event SET prev_hash = :prev, row_hash = :row WHERE id = :id"),
                     {"prev": previous, "row": row_hash, "id": row["id"]})
        previous = row_hash
    op.execute("ALTER TABLE custody_event ENABLE TRIGGER custody_event_append_only")


def downgrade() -> None:
    op.drop_constraint('custody_event_row_hash_key', 'custody_event', type_='unique')
    op.execute("ALTER TABLE custody_event DISABLE TRIGGER custody_event_append_only")
    op.drop_column('custody_event', 'row_hash')
    op.drop_column('custody_event', 'prev_hash')
    op.execute("ALTER TABLE custody_event ENABLE TRIGGER custody_event_append_only")
    op.drop_index(op.f('ix_workflow_history_export_case_id'), table_name='workflow_history_export')
    op.drop_table('workflow_history_export')
    for table in APPEND_ONLY_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.drop_index(op.f('ix_checkpoint_timestamp_checkpoint_id'), table_name='checkpoint_timestamp')
    op.drop_table('checkpoint_timestamp')
    op.drop_index(op.f('ix_transparency_checkpoint_tree_size'), table_name='transparency_checkpoint')
    op.drop_table('transparency_checkpoint')
    op.drop_table('transparency_node')
    op.drop_table('transparency_leaf')

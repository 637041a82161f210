"""The evidence transparency log in PostgreSQL: leaves, the perfect-subtree nodes proofs are read from, and the
signed checkpoints. All three are append-only (a trigger refuses UPDATE and DELETE)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, LargeBinary, SmallInteger
from sqlmodel import Field, SQLModel

from domain.base import timestamp_field


class TransparencyLeaf(SQLModel, table=True):
    """One evidence record, as the canonical JSON its leaf hash was computed from."""

    __tablename__ = "transparency_leaf"

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    evidence_id: uuid.UUID = Field(foreign_key="evidence.id", unique=True)
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    appended_at: datetime = timestamp_field(default_now=True)


class TransparencyNode(SQLModel, table=True):
    """The hash of a perfect subtree: (level, index) covers leaves [index·2^level, (index+1)·2^level)."""

    __tablename__ = "transparency_node"

    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    node_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class TransparencyCheckpoint(SQLModel, table=True):
    """A signed note of the log's size and root (C2SP tlog-checkpoint)."""

    __tablename__ = "transparency_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    root_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str
    issued_at: datetime = timestamp_field(default_now=True)


class CheckpointTimestamp(SQLModel, table=True):
    """An RFC 3161 time-stamp token over a checkpoint's signed note, from the configured authority. Stamped after
    the checkpoint's transaction (a remote call must not hold the log's lock), hence a row of its own."""

    __tablename__ = "checkpoint_timestamp"

    id: int | None = Field(default=None, primary_key=True)
    checkpoint_id: int = Field(foreign_key="transparency_checkpoint.id", index=True)
    tsa_url: str = Field(max_length=500)
    token: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    gen_time: datetime = timestamp_field()
    serial_number: str = Field(max_length=100)

"""The scheduled checkpoint on a real Temporal dev server and PostgreSQL: it signs when the log grew (appending
evidence recorded before the log existed), and does nothing when it has not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.worker import Worker

from activities.transparency import IssueCheckpointInput, TransparencyActivities
from domain.transparency import log
from domain.transparency.signed_note import Checkpoint, NoteSigner, NoteVerifier, generate_signer_key
from tests.fixtures.database import truncate_all
from tests.integration.test_transparency_log import as_superuser_attacker, seed
from tests.workflows.conftest import export_history
from workflows.transparency_checkpoint import TransparencyCheckpointWorkflow

ORIGIN = "test.sunshine.local/evidence-log"


@pytest.fixture(autouse=True)
def empty_log(db_engine: Engine) -> Iterator[None]:
    truncate_all(db_engine)
    yield
    truncate_all(db_engine)


async def test_the_scheduled_checkpoint_signs_a_grown_log_only(temporal_dev_server: str, db_engine: Engine) -> None:
    client = await Client.connect(temporal_dev_server)
    signer = NoteSigner.from_signer_key(generate_signer_key(ORIGIN))
    queue = f"checkpoints-{uuid.uuid4().hex[:8]}"
    seed(db_engine, 3)
    # Evidence from before the log: its leaves are gone as if never appended (as after the upgrade).
    as_superuser_attacker(db_engine, "DELETE FROM transparency_leaf WHERE leaf_index = 2", "transparency_leaf")
    as_superuser_attacker(db_engine, "DELETE FROM transparency_node WHERE level = 0 AND node_index = 2",
                          "transparency_node")
    activities = TransparencyActivities(db_engine, signer, origin=ORIGIN)
    async with Worker(client, task_queue=queue, workflows=[TransparencyCheckpointWorkflow],
                      activities=[activities.issue_checkpoint], activity_executor=ThreadPoolExecutor(2)):
        handle = await client.start_workflow(TransparencyCheckpointWorkflow.run, IssueCheckpointInput(),
                                             id=f"checkpoint-{uuid.uuid4()}", task_queue=queue)
        first = await handle.result()
        await export_history(handle, "transparency_checkpoint")
        again = await client.execute_workflow(TransparencyCheckpointWorkflow.run, IssueCheckpointInput(),
                                              id=f"checkpoint-{uuid.uuid4()}", task_queue=queue)
    assert (first.issued, first.tree_size, first.appended_missing) == (True, 3, 1)
    assert not again.issued and again.tree_size == 3
    with Session(db_engine) as session:
        latest = log.latest_checkpoint(session)
    assert latest is not None and latest.id == first.checkpoint_id
    assert Checkpoint.parse(NoteVerifier.from_verifier_key(signer.verifier_key()).verify(latest.note)).size == 3

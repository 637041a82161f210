"""Talking to a workflow from a route: run an update (the only way the API changes state), read live state.

Shared by every router that acts on a workflow, so that a refusal, a timeout or an unreachable engine maps
to the same answer everywhere: 409 with the validator's reason, 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TypeVar

from fastapi import HTTPException, Request, status
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import temporal_client, temporal_unavailable

log = logging.getLogger("sunshine.api.updates")

ResultT = TypeVar("ResultT")

# Long enough for a worker to run the handler (it may call an activity), short enough that a request
# never hangs on an engine with no worker polling.
UPDATE_TIMEOUT = timedelta(seconds=15)
LIVE_STATE_TIMEOUT = timedelta(seconds=3)
# Statuses that mean "try again later" rather than "this action is refused".
TRANSIENT_RPC_STATUSES = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.ABORTED,
    }
)


async def send_update(
    request: Request,
    workflow_id: str,
    update: str,
    payload: object,
    *,
    result_type: type[ResultT],
    subject: str | None = None,
) -> ResultT:
    """Run the update; 409 with the validator's reason when refused, 503 when the engine cannot answer.

    Temporal is reached only here, after permissions and the body have been checked: a malformed or
    forbidden request gets its 4xx whether or not the engine is up. ``subject`` names the thing acted on
    in messages ("case …", "hand-off …"); the workflow id by default.
    """
    subject = subject or workflow_id
    client = await temporal_client(request)
    handle = client.get_workflow_handle(workflow_id)
    try:
        result: ResultT = await asyncio.wait_for(
            handle.execute_update(update, payload, result_type=result_type, rpc_timeout=UPDATE_TIMEOUT),
            UPDATE_TIMEOUT.total_seconds() + 5,
        )
    except WorkflowUpdateFailedError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=failure_message(error.cause)) from None
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
        raise temporal_unavailable(
            f"the engine did not answer in time; the action on {subject} may still be applied, "
            "reload it before retrying"
        ) from None
    except RPCError as error:
        if error.status in TRANSIENT_RPC_STATUSES:
            raise temporal_unavailable("the case engine (Temporal) is unavailable; try again shortly") from None
        if error.status is RPCStatusCode.NOT_FOUND:
            # The workflow has finished: what it governed is settled and takes no more actions.
            raise HTTPException(
                status.HTTP_409_CONFLICT, detail=f"{subject} takes no more actions: {error.message}"
            ) from None
        raise HTTPException(status.HTTP_409_CONFLICT, detail=error.message) from None
    return result


async def live_query(
    client: Client | None, workflow_id: str, query: str, *, result_type: type[ResultT]
) -> ResultT | None:
    """The workflow's answer to ``query``, or None when Temporal does not answer (the projection then
    stands alone)."""
    if client is None:
        return None
    try:
        result: ResultT = await asyncio.wait_for(
            client.get_workflow_handle(workflow_id).query(
                query, result_type=result_type, rpc_timeout=LIVE_STATE_TIMEOUT
            ),
            LIVE_STATE_TIMEOUT.total_seconds() + 1,
        )
    except Exception as error:  # any failure: the read model is a complete answer by itself
        log.debug("live state of %s unavailable: %s", workflow_id, type(error).__name__)
        return None
    return result


def failure_message(cause: BaseException) -> str:
    message = getattr(cause, "message", None)
    return str(message) if message else str(cause) or "the action was refused"

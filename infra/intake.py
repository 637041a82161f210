"""Alert intake: the one code path every alert takes, whoever raises it.

Edge boxes (``POST /api/v1/alerts``), the vision worker and the scheduled certificate checks all call
``AlertIntake.receive``. The order is what makes it safe to retry at any point:

1. ``meta`` is checked (pure rules in ``domain.alerts.intake_rules``); nothing is written for a refusal.
2. The evidence is stored first (snapshot image, optional clip): content and size are checked for both parts
   before either is written, so a refused upload leaves no object behind.
3. The ``alert`` row is inserted idempotently on ``(source, event_id)``: the first row wins, and the same
   event again (however often, however concurrently) resolves to it. Its ``delivered_at`` is still empty.
4. Delivery, under a lock per (camera, alert type): PostgreSQL advisory lock across processes, an asyncio
   lock in front of it within one. The case to join is the one holding the latest delivered alert of this
   camera and type, if this alert falls within the type's merge window; else the alert opens its own case,
   ``case-<alert id>``. The chosen case is written on the row *before* Temporal is called, so a retry after
   a crash or an outage targets the same case. Then one update-with-start (update id = alert id, so Temporal
   applies it once) adds the alert, starting the case workflow when needed. A case that refuses the alert
   (closed, or the window has passed by its own reckoning) makes the alert open its own case instead.
   Finally the row is marked delivered with its case and whether it was merged.

When Temporal cannot be reached, ``TemporalUnavailable`` is raised after step 3: the evidence and the pending
row stay, and the next ``receive`` of the same event (or ``deliver_pending``) completes the delivery.

Exactly one call delivers an alert; it gets ``IntakeResult.created`` true (the API answers 201). Every other
call for that event, before or after, gets the same ids with ``created`` false (200) once it is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, ParamSpec, TypeVar

import psycopg.errors
from sqlalchemy import Connection, Engine, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.alerts.intake_rules import (
    AlertMeta,
    UnknownCamera,
    case_id_opened_by,
    check_camera_scope,
    check_capture_time,
    check_part_content,
    check_part_size,
    may_join_case,
    parse_alert_meta,
)
from domain.alerts.taxonomy import alert_type_info
from domain.base import utcnow
from domain.cases.models import Alert
from domain.evidence.content import SNIFF_BYTES
from domain.evidence.models import CollectionMethod, Evidence
from domain.evidence.refs import EvidenceRef
from domain.evidence.service import check_actor
from domain.merchants.models import Camera, Merchant
from infra.db import session_scope
from infra.evidence_store import EvidenceStore
from workflows.alert_case import (
    UPDATE_ADD_ALERT,
    WORKFLOW_NAME,
    AddAlertInput,
    AddAlertResult,
    AlertRef,
    OpenCaseInput,
)

__all__ = [
    "AlertIntake",
    "AlertRefusedByCase",
    "AlertSender",
    "AlertSubmission",
    "DeliveryPending",
    "EvidenceUpload",
    "IntakeResult",
    "TemporalUnavailable",
]

log = logging.getLogger("sunshine.intake")

DEFAULT_DELIVERY_TIMEOUT = timedelta(seconds=15)
# How long a delivery waits for another delivery of the same camera and type (in another process) to finish.
DEFAULT_ROUTING_LOCK_TIMEOUT = timedelta(seconds=30)
# Advisory-lock namespace (first key) of "routing an alert of this camera and type"; the second key hashes both.
ROUTING_LOCK_NAMESPACE = 0x0A1E27
# Temporal answers that mean "not now" rather than "no": the alert stays pending and the sender retries.
_UNAVAILABLE_STATUSES = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
)

P = ParamSpec("P")
T = TypeVar("T")


# What goes in and what comes out


@dataclass(frozen=True)
class EvidenceUpload:
    """The bytes of one evidence part: ``bytes``, or a seekable binary file read from its current position."""

    content: bytes | BinaryIO
    declared_content_type: str | None = None  # what the sender claims (multipart Content-Type); bytes decide


@dataclass(frozen=True)
class AlertSender:
    """Who raises the alert; set by the caller from authentication, never from the alert itself."""

    # ``device:<key id>`` or ``system:<component>``: the namespace of event ids and the custody-log actor.
    source: str
    merchant_id: int | None = None  # a device bound to a merchant; None: any camera in the district
    role: str = "device"  # custody-log actor role
    unit: str | None = None  # custody-log 单位


@dataclass(frozen=True)
class AlertSubmission:
    sender: AlertSender
    meta: Mapping[str, Any]  # the JSON object described in domain.alerts.intake_rules
    snapshot: EvidenceUpload  # JPEG, PNG or WebP
    clip: EvidenceUpload | None = None  # WebM or MP4
    collection_method: CollectionMethod = CollectionMethod.ai_capture


@dataclass(frozen=True)
class IntakeResult:
    alert_id: uuid.UUID
    case_id: str
    merged: bool  # joined a case that was already open (False: this alert opened the case)
    created: bool  # this call delivered the alert; False when an earlier call had (the API's 201 vs 200)


class DeliveryPending(RuntimeError):
    """The alert and its evidence are stored but its case has not heard of it yet; retry the same event_id."""

    def __init__(self, message: str, *, alert_id: uuid.UUID) -> None:
        super().__init__(message)
        self.alert_id = alert_id


class TemporalUnavailable(DeliveryPending):
    """Temporal (or every casework worker) could not be reached in time."""


class AlertRefusedByCase(RuntimeError):
    """The case this alert opens refused it: a disagreement between intake and workflow rules (a bug)."""


# The orchestration


class AlertIntake:
    def __init__(
        self,
        *,
        engine: Engine,
        evidence_store: EvidenceStore,
        temporal_client_factory: Callable[[], Awaitable[Client]],
        task_queue: str,
        delivery_timeout: timedelta = DEFAULT_DELIVERY_TIMEOUT,
        routing_lock_timeout: timedelta = DEFAULT_ROUTING_LOCK_TIMEOUT,
        max_concurrent_deliveries: int = 8,
        threads: int = 16,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._evidence_store = evidence_store
        self._temporal_client_factory = temporal_client_factory
        self._task_queue = task_queue
        self._delivery_timeout = delivery_timeout
        self._routing_lock_timeout = routing_lock_timeout
        self._clock = clock
        # Blocking work (database, object store) runs here, not on the event loop, and not in the loop's
        # default pool, whose size follows the CPU count and which the rest of the process shares.
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="alert-intake")
        # Each delivery in flight holds one pooled connection (the routing lock) while it waits on Temporal;
        # the bound leaves connections for everything else.
        self._delivery_slots = asyncio.Semaphore(max_concurrent_deliveries)
        self._local_locks: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = weakref.WeakValueDictionary()

    def close(self) -> None:
        """Stop the worker threads (at process shutdown); deliveries still running finish first."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def receive(self, submission: AlertSubmission) -> IntakeResult:
        """Store, record and deliver one alert; see the module docstring for the guarantees.

        Raises InvalidAlertMeta / CapturedAtOutOfRange (422), UnknownCamera (404), CameraNotPermitted (403),
        PartTooLarge / EvidenceTooLarge (413), UnsupportedContent / ContentTypeMismatch (415) with nothing
        written; DeliveryPending / TemporalUnavailable (503) with the evidence and the alert row kept.
        """
        check_actor(submission.sender.source)
        meta = parse_alert_meta(submission.meta)
        # One thread hop and one transaction: the row of this event if any, else where its camera is.
        found = await self._run(
            _find_alert_or_placement,
            self._engine,
            source=submission.sender.source,
            event_id=meta.event_id,
            camera_id=meta.camera_id,
            clock=self._clock,
            captured_at=meta.captured_at,
        )
        if isinstance(found, Alert):
            alert = found
        else:
            received_at, placement = found
            alert = await self._record(submission, meta, received_at=received_at, placement=placement)
        if alert.delivered_at is not None:
            return _result(alert, created=False)
        return await self._deliver(alert)

    async def deliver_pending(self, *, received_before: datetime, limit: int = 100) -> list[IntakeResult]:
        """Deliver alerts stored while Temporal was down whose senders never retried (for a periodic job).

        Raises TemporalUnavailable at the first alert that still cannot be delivered.
        """
        pending = await self._run(_pending_alerts, self._engine, received_before=received_before, limit=limit)
        return [await self._deliver(alert) for alert in pending]

    # Steps 1–3: evidence, then the row

    async def _record(
        self, submission: AlertSubmission, meta: AlertMeta, *, received_at: datetime, placement: _Placement
    ) -> Alert:
        check_camera_scope(
            camera_id=meta.camera_id,
            camera_merchant_id=placement.merchant_id,
            sender_merchant_id=submission.sender.merchant_id,
        )
        max_bytes = self._evidence_store.max_bytes
        snapshot = _prepare_part(submission.snapshot, part="snapshot", max_bytes=max_bytes)
        clip = None if submission.clip is None else _prepare_part(submission.clip, part="clip", max_bytes=max_bytes)
        snapshot_ref = await self._run(self._store_part, snapshot, submission=submission, meta=meta)
        clip_ref = None if clip is None else await self._run(self._store_part, clip, submission=submission, meta=meta)
        return await self._run(
            _insert_alert,
            self._engine,
            values={
                "id": uuid.uuid4(),
                "source": submission.sender.source,
                "event_id": meta.event_id,
                "camera_id": meta.camera_id,
                "merchant_id": placement.merchant_id,
                "street_office_id": placement.street_office_id,
                "alert_type": meta.alert_type.value,
                "captured_at": meta.captured_at,
                "received_at": received_at,
                "score": meta.score,
                "boxes": [box.to_json() for box in meta.boxes],
                "model": None if meta.model is None else meta.model.to_json(),
                "detail": dict(meta.detail or {}),
                "snapshot_evidence_id": snapshot_ref.evidence_id,
                "clip_evidence_id": None if clip_ref is None else clip_ref.evidence_id,
                "case_id": None,
                "merged": False,
                "delivered_at": None,
            },
        )

    def _store_part(self, part: _PreparedPart, *, submission: AlertSubmission, meta: AlertMeta) -> EvidenceRef:
        sender = submission.sender
        return self._evidence_store.put(
            part.content,
            collection_method=submission.collection_method,
            actor=sender.source,
            actor_role=sender.role,
            unit=sender.unit,
            captured_at=meta.captured_at,
            declared_content_type=part.content_type,
            # The same for every retry of this event, so that retries add nothing to the custody log.
            source_meta={
                "part": part.name,
                "event_id": meta.event_id,
                "camera_id": meta.camera_id,
                "alert_type": meta.alert_type.value,
                "model": None if meta.model is None else meta.model.to_json(),
            },
        )

    # Step 4: delivery

    async def _deliver(self, alert: Alert) -> IntakeResult:
        key = (alert.camera_id, alert.alert_type)
        # The in-process lock first: waiting for it holds neither a delivery slot nor a connection.
        async with self._local_turn(key), self._delivery_slots:
            try:
                async with self._routing_lock(key) as hold:
                    return await self._deliver_holding_lock(hold, alert_id=alert.id)
            except _RoutingLockTimeout as error:
                raise DeliveryPending(
                    f"another delivery for camera {alert.camera_id} and type {alert.alert_type} is still running; "
                    "retry later",
                    alert_id=alert.id,
                ) from error

    async def _deliver_holding_lock(self, hold: _LockHold, *, alert_id: uuid.UUID) -> IntakeResult:
        connection = hold.connection
        pending = await self._run(_load_for_delivery, connection, alert_id=alert_id)
        alert = pending.alert
        if alert.delivered_at is not None:  # a concurrent call delivered it while this one waited
            return _result(alert, created=False)
        client = await self._connect(alert_id=alert.id)
        own_case_id = case_id_opened_by(alert.id)
        # A row that names a case without being delivered was routed before and the answer was lost: ask it again.
        target = (
            alert.case_id if alert.case_id is not None else await self._run(_route_and_record, connection, alert=alert)
        )
        try:
            delivered = await self._add_alert(client, pending, case_id=target)
        except _CaseRefused as refusal:
            if target != own_case_id:
                await self._run(_record_target, connection, alert_id=alert.id, case_id=own_case_id)
                delivered = await self._add_alert_to_own_case(client, pending, own_case_id=own_case_id)
            else:
                delivered = _own_case_outcome(refusal, own_case_id=own_case_id)
        # Committed in the same thread hop as the lock's release, just before it (a failure still raises here).
        hold.last_step = functools.partial(
            _mark_delivered,
            connection,
            alert_id=alert.id,
            case_id=delivered.case_id,
            merged=delivered.merged,
            delivered_at=self._clock(),
        )
        return IntakeResult(alert_id=alert.id, case_id=delivered.case_id, merged=delivered.merged, created=True)

    async def _add_alert_to_own_case(
        self, client: Client, pending: _PendingDelivery, *, own_case_id: str
    ) -> _Delivered:
        try:
            return await self._add_alert(client, pending, case_id=own_case_id)
        except _CaseRefused as refusal:
            return _own_case_outcome(refusal, own_case_id=own_case_id)

    async def _add_alert(self, client: Client, pending: _PendingDelivery, *, case_id: str) -> _Delivered:
        alert = pending.alert
        operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            WORKFLOW_NAME,
            OpenCaseInput(
                case_id=case_id,
                merchant_id=alert.merchant_id,
                street_office_id=alert.street_office_id,
                camera_id=alert.camera_id,
                alert_type=alert.alert_type,
            ),
            id=case_id,
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A closed case's id is never reused: without this, a late alert would restart the closed case.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        request = AddAlertInput(
            alert=AlertRef(
                alert_id=str(alert.id),
                event_id=alert.event_id,
                alert_type=alert.alert_type,
                captured_at=alert.captured_at,
                score=alert.score,
                snapshot=pending.snapshot.to_payload(),
                clip=None if pending.clip is None else pending.clip.to_payload(),
            )
        )
        try:
            result: AddAlertResult = await asyncio.wait_for(
                client.execute_update_with_start_workflow(
                    UPDATE_ADD_ALERT,
                    request,
                    start_workflow_operation=operation,
                    id=str(alert.id),  # Temporal applies one update id once per run: retries are harmless
                    result_type=AddAlertResult,
                ),
                timeout=self._delivery_timeout.total_seconds(),
            )
        except WorkflowUpdateFailedError as error:
            raise _CaseRefused(f"case {case_id} refused alert {alert.id}: {error.cause or error}") from error
        except WorkflowAlreadyStartedError as error:
            raise _CaseRefused(f"case {case_id} is closed", closed=True) from error
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
            log.warning("alert %s: case %s did not answer within %s", alert.id, case_id, self._delivery_timeout)
            raise _unavailable(alert.id, "the case service did not answer in time") from error
        except RPCError as error:
            if error.status not in _UNAVAILABLE_STATUSES:
                raise
            log.warning("alert %s: Temporal unavailable while delivering to %s: %s", alert.id, case_id, error)
            raise _unavailable(alert.id, "the case service (Temporal) is unavailable") from error
        finally:
            _forget_start_outcome(operation)
        return _Delivered(case_id=result.case_id, merged=result.merged)

    async def _connect(self, *, alert_id: uuid.UUID) -> Client:
        try:
            return await self._temporal_client_factory()
        except Exception as error:
            log.warning("alert %s: cannot connect to Temporal: %s", alert_id, error)
            raise _unavailable(alert_id, "the case service (Temporal) cannot be reached") from error

    # Locks and threads

    @contextlib.asynccontextmanager
    async def _local_turn(self, key: tuple[int, str]) -> AsyncIterator[None]:
        lock = self._local_locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._local_locks[key] = lock  # weak: dropped once nobody holds or awaits it
        async with lock:
            yield

    @contextlib.asynccontextmanager
    async def _routing_lock(self, key: tuple[int, str]) -> AsyncIterator[_LockHold]:
        lock_key = _routing_lock_key(*key)
        loop = asyncio.get_running_loop()
        acquiring = loop.run_in_executor(
            self._executor,
            functools.partial(
                _acquire_routing_lock, self._engine, lock_key=lock_key, timeout=self._routing_lock_timeout
            ),
        )
        try:
            connection = await asyncio.shield(acquiring)
        except asyncio.CancelledError:
            # The thread may still get the lock after this task stopped waiting: let go of it then.
            acquiring.add_done_callback(functools.partial(self._release_abandoned_lock, lock_key=lock_key))
            raise
        hold = _LockHold(connection)
        try:
            yield hold
        finally:
            # Shielded: a cancelled request must still release the lock and return the connection.
            await asyncio.shield(
                loop.run_in_executor(
                    self._executor,
                    functools.partial(_release_routing_lock, connection, lock_key=lock_key, last_step=hold.last_step),
                )
            )

    def _release_abandoned_lock(self, acquiring: asyncio.Future[Connection], *, lock_key: int) -> None:
        if not acquiring.cancelled() and acquiring.exception() is None:
            self._executor.submit(_release_routing_lock, acquiring.result(), lock_key=lock_key)

    async def _run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )


# Internal values


@dataclass
class _LockHold:
    """The connection holding a routing lock, and what to commit on it just before the lock is released."""

    connection: Connection
    last_step: Callable[[], None] | None = None


@dataclass(frozen=True)
class _Placement:
    merchant_id: int
    street_office_id: int


@dataclass(frozen=True)
class _PreparedPart:
    name: str  # "snapshot" | "clip"
    content: bytes | BinaryIO
    content_type: str


@dataclass(frozen=True)
class _PendingDelivery:
    alert: Alert
    snapshot: EvidenceRef
    clip: EvidenceRef | None


@dataclass(frozen=True)
class _Delivered:
    case_id: str
    merged: bool


class _CaseRefused(Exception):
    def __init__(self, message: str, *, closed: bool = False) -> None:
        super().__init__(message)
        self.closed = closed


class _RoutingLockTimeout(Exception):
    pass


def _unavailable(alert_id: uuid.UUID, reason: str) -> TemporalUnavailable:
    # Said to the sender: no addresses or driver messages (those go to the log).
    return TemporalUnavailable(
        f"{reason}; alert {alert_id} and its evidence are stored: post the same event_id again later",
        alert_id=alert_id,
    )


def _result(alert: Alert, *, created: bool) -> IntakeResult:
    assert alert.case_id is not None  # delivered rows always carry their case
    return IntakeResult(alert_id=alert.id, case_id=alert.case_id, merged=alert.merged, created=created)


def _own_case_outcome(refusal: _CaseRefused, *, own_case_id: str) -> _Delivered:
    """The case this alert opens refused it. Closed: only this alert's delivery starts that case, so it is in
    there already (an earlier attempt got through but its answer was lost). Anything else is a bug."""
    if refusal.closed:
        return _Delivered(case_id=own_case_id, merged=False)
    raise AlertRefusedByCase(str(refusal)) from refusal


def _prepare_part(upload: EvidenceUpload, *, part: str, max_bytes: int) -> _PreparedPart:
    """Check kind and size of a part from its first bytes and its length, without consuming it."""
    content = upload.content
    if isinstance(content, bytes | bytearray | memoryview):
        head, size = bytes(content[:SNIFF_BYTES]), len(content)
    else:
        start = content.tell()
        head = content.read(SNIFF_BYTES)
        size = content.seek(0, os.SEEK_END) - start
        content.seek(start)
    check_part_size(part=part, size=size, max_bytes=max_bytes)
    content_type = check_part_content(part=part, head=head, declared_content_type=upload.declared_content_type)
    return _PreparedPart(name=part, content=content, content_type=content_type)


def _routing_lock_key(camera_id: int, alert_type: str) -> int:
    digest = hashlib.sha256(f"{camera_id}:{alert_type}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _forget_start_outcome(operation: WithStartWorkflowOperation[Any, Any]) -> None:
    # The SDK parks the start's outcome in a future that nobody here awaits; reading a failure marks it
    # retrieved, or asyncio logs "Future exception was never retrieved" for every refused or failed call.
    future = getattr(operation, "_workflow_handle", None)
    if isinstance(future, asyncio.Future) and future.done() and not future.cancelled():
        future.exception()


# Blocking database work (runs on the intake's threads)


def _pending_alerts(engine: Engine, *, received_before: datetime, limit: int) -> list[Alert]:
    with Session(engine, expire_on_commit=False) as session:
        statement = (
            select(Alert)
            .where(col(Alert.delivered_at).is_(None), Alert.received_at < received_before)
            .order_by(col(Alert.received_at))
            .limit(limit)
        )
        return list(session.exec(statement).all())


def _find_alert_or_placement(
    engine: Engine,
    *,
    source: str,
    event_id: str,
    camera_id: int,
    clock: Callable[[], datetime],
    captured_at: datetime,
) -> Alert | tuple[datetime, _Placement]:
    """The row of this event if there is one; else when it is received (checked against its capture time)
    and where its camera is. Raises CapturedAtOutOfRange, then UnknownCamera, as the separate steps did."""
    with Session(engine, expire_on_commit=False) as session:
        alert = session.exec(select(Alert).where(Alert.source == source, Alert.event_id == event_id)).first()
        if alert is not None:
            return alert
        received_at = clock()
        check_capture_time(captured_at=captured_at, received_at=received_at)
        return received_at, _placement_in(session, camera_id=camera_id)


def _placement_in(session: Session, *, camera_id: int) -> _Placement:
    row = session.exec(
        select(Camera.merchant_id, Merchant.street_office_id)
        .join(Merchant, col(Merchant.id) == col(Camera.merchant_id))
        .where(Camera.id == camera_id)
    ).first()
    if row is None:
        raise UnknownCamera(f"no camera with id {camera_id}")
    merchant_id, street_office_id = row
    return _Placement(merchant_id=merchant_id, street_office_id=street_office_id)


_INSERT_ALERT = pg_insert(Alert).on_conflict_do_nothing(constraint="alert_source_event_id").returning(Alert)


def _insert_alert(engine: Engine, *, values: dict[str, Any]) -> Alert:
    """The row of this (source, event_id): the one inserted now, or the one that was there first."""
    with session_scope(engine) as session:
        # DO NOTHING waits for a concurrent insert of the same key to commit, so the select below finds it.
        # RETURNING hands back the row inserted now: the select is needed only when another was there first.
        # The values go as parameters of one statement built once (building it per call costs more than the
        # round trip it saves).
        inserted = session.scalars(_INSERT_ALERT, values).first()
        if inserted is not None:
            return inserted
        return session.exec(
            select(Alert).where(Alert.source == values["source"], Alert.event_id == values["event_id"])
        ).one()


def _acquire_routing_lock(engine: Engine, *, lock_key: int, timeout: timedelta) -> Connection:
    """A pooled connection holding the session-level routing lock (kept across the Temporal call)."""
    connection = engine.connect()
    try:
        # Transaction-local, so the pooled connection keeps its normal lock_timeout afterwards.
        connection.execute(
            text("SELECT set_config('lock_timeout', :timeout, true)"),
            {"timeout": f"{int(timeout.total_seconds() * 1000)}ms"},
        )
        connection.execute(
            text("SELECT pg_advisory_lock(:namespace, :key)"), {"namespace": ROUTING_LOCK_NAMESPACE, "key": lock_key}
        )
        connection.commit()
    except BaseException as error:
        connection.invalidate()  # closing the session server-side drops any lock it may have got
        connection.close()
        if isinstance(error, OperationalError) and isinstance(error.orig, psycopg.errors.LockNotAvailable):
            raise _RoutingLockTimeout(str(error.orig)) from error
        raise
    return connection


def _release_routing_lock(
    connection: Connection, *, lock_key: int, last_step: Callable[[], None] | None = None
) -> None:
    try:
        if last_step is not None:
            last_step()  # its own committed transaction, while the lock is still held
    finally:
        try:
            _unlock(connection, lock_key=lock_key)
        finally:
            connection.close()


def _unlock(connection: Connection, *, lock_key: int) -> None:
    try:
        connection.rollback()  # whatever a failed step left open
        connection.execute(
            text("SELECT pg_advisory_unlock(:namespace, :key)"), {"namespace": ROUTING_LOCK_NAMESPACE, "key": lock_key}
        )
        connection.commit()
    except BaseException:
        connection.invalidate()  # never return a connection to the pool that might still hold the lock
        raise


def _load_for_delivery(connection: Connection, *, alert_id: uuid.UUID) -> _PendingDelivery:
    with _unit_of_work(connection) as session:
        # The snapshot comes with its alert (one round trip); a clip, when there is one, with a second.
        alert, snapshot = session.exec(
            select(Alert, Evidence)
            .join(Evidence, col(Evidence.id) == col(Alert.snapshot_evidence_id))
            .where(Alert.id == alert_id)
        ).one()
        clip = None
        if alert.clip_evidence_id is not None:
            clip = session.exec(select(Evidence).where(Evidence.id == alert.clip_evidence_id)).one()
        return _PendingDelivery(
            alert=alert,
            snapshot=EvidenceRef.from_record(snapshot),
            clip=None if clip is None else EvidenceRef.from_record(clip),
        )


def _route_and_record(connection: Connection, *, alert: Alert) -> str:
    """The case to ask (``_route_in``), recorded on the row (``_record_target``) in the same transaction."""
    with _unit_of_work(connection) as session:
        target = _route_in(session, alert=alert)
        _record_target_in(session, alert_id=alert.id, case_id=target)
    return target


def _route_in(session: Session, *, alert: Alert) -> str:
    """The case holding the latest delivered alert of this camera and type when this alert falls within the
    merge window of it; otherwise the case this alert opens."""
    latest = session.exec(
        select(Alert)
        .where(
            Alert.camera_id == alert.camera_id,
            Alert.alert_type == alert.alert_type,
            col(Alert.delivered_at).is_not(None),
            col(Alert.case_id).is_not(None),
            Alert.id != alert.id,
        )
        .order_by(col(Alert.captured_at).desc())
        .limit(1)
    ).first()
    window = alert_type_info(alert.alert_type).merge_window
    if (
        latest is not None
        and latest.case_id is not None
        and may_join_case(captured_at=alert.captured_at, case_last_captured_at=latest.captured_at, merge_window=window)
    ):
        return latest.case_id
    return case_id_opened_by(alert.id)


def _record_target(connection: Connection, *, alert_id: uuid.UUID, case_id: str) -> None:
    """Remember the case about to be asked, so a retry asks the same one (``delivered_at`` still empty)."""
    with _unit_of_work(connection) as session:
        _record_target_in(session, alert_id=alert_id, case_id=case_id)


def _record_target_in(session: Session, *, alert_id: uuid.UUID, case_id: str) -> None:
    session.execute(
        update(Alert).where(col(Alert.id) == alert_id, col(Alert.delivered_at).is_(None)).values(case_id=case_id)
    )


def _mark_delivered(
    connection: Connection, *, alert_id: uuid.UUID, case_id: str, merged: bool, delivered_at: datetime
) -> None:
    with _unit_of_work(connection) as session:
        session.execute(
            update(Alert)
            .where(col(Alert.id) == alert_id, col(Alert.delivered_at).is_(None))
            .values(case_id=case_id, merged=merged, delivered_at=delivered_at)
        )


@contextlib.contextmanager
def _unit_of_work(connection: Connection) -> Iterator[Session]:
    """One committed transaction on the lock's connection (the session-level lock outlives it)."""
    with Session(bind=connection, expire_on_commit=False) as session:
        yield session
        session.commit()

"""Every table, imported in one place so that metadata (and Alembic) sees them all."""

from domain.audit.models import AuditEvent, WorkflowHistoryExport
from domain.calendar.models import OfficialCalendarYear
from domain.cases.models import Alert, AlertCase, CaseEvent, EnforcementHandoff
from domain.detectors.models import DetectorModel
from domain.devices.models import Device
from domain.evidence.models import CustodyEvent, Evidence
from domain.merchants.models import Camera, Certificate, Merchant, StreetOffice
from domain.notifications.models import Notification, OutboxMessage
from domain.transparency.models import (
    CheckpointTimestamp,
    TransparencyCheckpoint,
    TransparencyLeaf,
    TransparencyNode,
)
from domain.users.lockout import LoginLockout
from domain.users.models import User
from domain.users.saved_filters import SavedFilter
from domain.users.web_sessions import WebSession

__all__ = [
    "Alert",
    "AlertCase",
    "AuditEvent",
    "Camera",
    "CaseEvent",
    "Certificate",
    "CheckpointTimestamp",
    "CustodyEvent",
    "DetectorModel",
    "Device",
    "EnforcementHandoff",
    "Evidence",
    "LoginLockout",
    "Merchant",
    "Notification",
    "OfficialCalendarYear",
    "OutboxMessage",
    "SavedFilter",
    "StreetOffice",
    "TransparencyCheckpoint",
    "TransparencyLeaf",
    "TransparencyNode",
    "User",
    "WebSession",
    "WorkflowHistoryExport",
]

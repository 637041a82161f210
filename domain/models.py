"""Every table, imported in one place so that metadata (and Alembic) sees them all."""

from domain.calendar.models import OfficialCalendarYear
from domain.cases.models import Alert, AlertCase, CaseEvent, EnforcementHandoff
from domain.devices.models import Device
from domain.evidence.models import CustodyEvent, Evidence
from domain.merchants.models import Camera, Certificate, Merchant, StreetOffice
from domain.notifications.models import Notification, OutboxMessage
from domain.users.lockout import LoginLockout
from domain.users.models import User

__all__ = [
    "Alert",
    "AlertCase",
    "Camera",
    "CaseEvent",
    "Certificate",
    "CustodyEvent",
    "Device",
    "EnforcementHandoff",
    "Evidence",
    "LoginLockout",
    "Merchant",
    "Notification",
    "OfficialCalendarYear",
    "OutboxMessage",
    "StreetOffice",
    "User",
]

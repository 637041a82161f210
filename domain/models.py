"""Every table, imported in one place so that metadata (and Alembic) sees them all."""

from domain.calendar.models import OfficialCalendarYear
from domain.devices.models import Device
from domain.evidence.models import CustodyEvent, Evidence
from domain.merchants.models import Camera, Certificate, Merchant, StreetOffice
from domain.users.models import User

__all__ = [
    "Camera",
    "Certificate",
    "CustodyEvent",
    "Device",
    "Evidence",
    "Merchant",
    "OfficialCalendarYear",
    "StreetOffice",
    "User",
]

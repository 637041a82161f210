"""The detector model registry: parse and check what an administrator maps, record a validated model.

Keyword-only functions on a Session; they flush, the caller commits. Inspecting the file itself (loading it,
a dry inference) is the vision library's job; these functions receive its findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from domain.alerts.taxonomy import ALERT_TYPES, AlertCategory, AlertType
from domain.detectors.models import DetectorModel
from domain.errors import Conflict, ValidationFailed
from domain.merchants.models import CAMERA_AREA_LABELS, CameraArea

# What a detector can see: dress, behaviour and pests. Certificates and camera faults come from elsewhere.
DETECTABLE_CATEGORIES = frozenset({AlertCategory.dress, AlertCategory.behaviour, AlertCategory.pest})
AREA_BY_LABEL = {label: area for area, label in CAMERA_AREA_LABELS.items()}


@dataclass(frozen=True)
class InspectedModel:
    """What the vision library found in the file."""

    runtime: str
    sha256: str
    layout: str
    input_width: int
    input_height: int
    classes: Sequence[str]
    licence: str


def parse_class_map(text: str) -> dict[str, str]:
    """``'no_hat=no_hat,cigarette=smoking'`` → {'no_hat': 'no_hat', 'cigarette': 'smoking'}."""
    mapping: dict[str, str] = {}
    problems = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        model_class, sep, alert_type = (side.strip() for side in part.partition("="))
        if not sep or not model_class or not alert_type:
            problems.append(f"{part!r} is not CLASS=ALERT_TYPE")
        elif model_class in mapping:
            problems.append(f"class {model_class!r} is mapped twice")
        else:
            mapping[model_class] = alert_type
    if problems:
        raise ValidationFailed("the class map is not valid", problems)
    if not mapping:
        raise ValidationFailed("the class map is empty: map at least one class to an alert type")
    return mapping


def parse_areas(text: str | None) -> list[str] | None:
    """Camera areas by code or Chinese name (``专间,cooking``); None or empty: every area."""
    if not text or not text.strip():
        return None
    areas, problems = [], []
    for raw in (piece.strip() for piece in text.split(",") if piece.strip()):
        area = AREA_BY_LABEL.get(raw) or _area_code(raw)
        if area is None:
            known = ", ".join(f"{a.value} ({label})" for a, label in CAMERA_AREA_LABELS.items())
            problems.append(f"unknown area {raw!r}; the areas are: {known}")
        elif area.value not in areas:
            areas.append(area.value)
    if problems:
        raise ValidationFailed("the areas are not valid", problems)
    return areas


def _area_code(raw: str) -> CameraArea | None:
    try:
        return CameraArea(raw)
    except ValueError:
        return None


def check_class_map(class_map: dict[str, str], *, classes: Sequence[str]) -> None:
    problems = []
    for model_class, alert_type in class_map.items():
        if model_class not in classes:
            problems.append(f"the model has no class {model_class!r} (it has: {', '.join(classes)})")
        try:
            info = ALERT_TYPES[AlertType(alert_type)]
        except ValueError:
            problems.append(f"unknown alert type {alert_type!r}")
            continue
        if info.category not in DETECTABLE_CATEGORIES:
            problems.append(f"{alert_type!r} is a {info.category.value} alert; a detector raises dress, behaviour "
                            "and pest alerts only")
    if problems:
        raise ValidationFailed("the class map does not fit the model", problems)


def register_model(
    session: Session,
    *,
    name: str,
    version: str,
    inspected: InspectedModel,
    path: str,
    class_map: dict[str, str],
    areas: list[str] | None,
    registered_by: str,
) -> DetectorModel:
    name, version = name.strip(), version.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("the model name must be 1–100 characters")
    if not version or len(version) > 64:
        raise ValidationFailed("the version must be 1–64 characters")
    check_class_map(class_map, classes=inspected.classes)
    existing = session.exec(
        select(DetectorModel).where(col(DetectorModel.name) == name, col(DetectorModel.version) == version)
    ).first()
    if existing is not None:
        if existing.sha256 == inspected.sha256 and existing.class_map == class_map and existing.areas == areas:
            return existing  # the same registration again: nothing to do
        raise Conflict(f"model {name} {version} is already registered with other content; use a new version")
    model = DetectorModel(
        name=name, version=version, runtime=inspected.runtime, sha256=inspected.sha256, path=path,
        layout=inspected.layout, input_width=inspected.input_width, input_height=inspected.input_height,
        classes=list(inspected.classes), class_map=class_map, areas=areas, licence=inspected.licence,
        registered_by=registered_by,
    )
    session.add(model)
    session.flush()
    return model


def list_models(session: Session) -> list[DetectorModel]:
    return list(session.exec(select(DetectorModel).order_by(col(DetectorModel.name), col(DetectorModel.version))))


def find_model(session: Session, *, name: str, version: str | None = None) -> DetectorModel | None:
    """The enabled model of that name: the given version, else the most recently registered one."""
    statement = select(DetectorModel).where(col(DetectorModel.name) == name, col(DetectorModel.enabled).is_(True))
    if version:
        statement = statement.where(col(DetectorModel.version) == version)
    return session.exec(statement.order_by(col(DetectorModel.registered_at).desc())).first()


def model_for_area(session: Session, *, area: str) -> DetectorModel | None:
    """The detector a camera in ``area`` runs: the most recently registered enabled model whose areas include it
    (a model without areas covers every area). One model per camera: the detector is the costly part."""
    statement = select(DetectorModel).where(col(DetectorModel.enabled).is_(True))
    for model in session.exec(statement.order_by(col(DetectorModel.registered_at).desc(),
                                                 col(DetectorModel.id).desc())):
        if model.areas is None or area in model.areas:
            return model
    return None

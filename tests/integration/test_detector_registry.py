"""The detector model registry: what an administrator maps is checked against what the model can see."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from domain.detectors.service import (
    InspectedModel,
    check_class_map,
    list_models,
    model_for_area,
    parse_areas,
    parse_class_map,
    register_model,
)
from domain.errors import Conflict, ValidationFailed

INSPECTED = InspectedModel(runtime="onnx", sha256="a" * 64, layout="yolov8", input_width=640, input_height=640,
                           classes=("person", "no_hat", "cigarette", "mouse"), licence="Apache-2.0")


def test_a_class_map_is_parsed_with_every_problem_named() -> None:
    assert parse_class_map(" no_hat=no_hat , cigarette=smoking,") == {"no_hat": "no_hat", "cigarette": "smoking"}
    with pytest.raises(ValidationFailed) as refused:
        parse_class_map("no_hat=no_hat,no_hat=no_mask,broken")
    assert "mapped twice" in refused.value.message and "'broken' is not CLASS=ALERT_TYPE" in refused.value.message
    with pytest.raises(ValidationFailed, match="empty"):
        parse_class_map(" , ")


def test_areas_by_code_or_chinese_name() -> None:
    assert parse_areas("专间, cooking,专间") == ["special_room", "cooking"]
    assert parse_areas("") is None
    with pytest.raises(ValidationFailed, match="unknown area 'attic'"):
        parse_areas("attic")


def test_the_map_must_fit_the_models_classes_and_detectable_alert_types() -> None:
    check_class_map({"no_hat": "no_hat", "mouse": "pest"}, classes=INSPECTED.classes)
    with pytest.raises(ValidationFailed) as refused:
        check_class_map({"helmet": "no_hat", "no_hat": "licence_expired", "mouse": "rats"}, classes=INSPECTED.classes)
    message = refused.value.message
    assert "no class 'helmet'" in message and "certificate alert" in message and "unknown alert type 'rats'" in message


def test_registering_is_idempotent_and_a_changed_file_needs_a_new_version(db_session: Session) -> None:
    first = register_model(db_session, name="kitchen-v8n", version="1", inspected=INSPECTED, path="/m/a.onnx",
                           class_map={"no_hat": "no_hat"}, areas=None, registered_by="admin")
    again = register_model(db_session, name="kitchen-v8n", version="1", inspected=INSPECTED, path="/m/a.onnx",
                           class_map={"no_hat": "no_hat"}, areas=None, registered_by="admin")
    assert again.id == first.id
    changed = InspectedModel(**{**INSPECTED.__dict__, "sha256": "b" * 64})
    with pytest.raises(Conflict, match="new version"):
        register_model(db_session, name="kitchen-v8n", version="1", inspected=changed, path="/m/b.onnx",
                       class_map={"no_hat": "no_hat"}, areas=None, registered_by="admin")
    register_model(db_session, name="kitchen-v8n", version="2", inspected=changed, path="/m/b.onnx",
                   class_map={"no_hat": "no_hat"}, areas=["special_room"], registered_by="admin")
    db_session.commit()
    assert [(m.version, m.areas) for m in list_models(db_session)] == [("1", None), ("2", ["special_room"])]


def test_a_camera_runs_the_newest_enabled_model_that_covers_its_area(db_session: Session) -> None:
    assert model_for_area(db_session, area="cooking") is None
    everywhere = register_model(db_session, name="kitchen", version="1", inspected=INSPECTED, path="/m/a.onnx",
                                class_map={"no_hat": "no_hat"}, areas=None, registered_by="admin")
    special = register_model(db_session, name="special-rooms", version="1",
                             inspected=InspectedModel(**{**INSPECTED.__dict__, "sha256": "c" * 64}),
                             path="/m/c.onnx", class_map={"no_hat": "no_mask"}, areas=["special_room"],
                             registered_by="admin")
    db_session.flush()
    assert model_for_area(db_session, area="special_room") == special
    assert model_for_area(db_session, area="cooking") == everywhere
    special.enabled = False
    db_session.add(special)
    db_session.flush()
    assert model_for_area(db_session, area="special_room") == everywhere

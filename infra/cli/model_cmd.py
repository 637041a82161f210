"""Detector models: `sunshine model add FILE …` validates and registers one, `sunshine model list` shows them.

A model is loaded and run once on a blank frame before it is accepted; the accepted file is copied, by its
SHA-256, into the models folder (``SUNSHINE_MODELS_DIR``, default ``var/models``), so the registry never points
at a file someone may later change or delete.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from infra.cli import CommandError
from infra.cli.admin_cmd import _domain_errors_as_refusals, _transaction


def register(subparsers: argparse._SubParsersAction) -> None:
    model = subparsers.add_parser("model", help="detector models (ONNX or torch.export .pt2)")
    commands = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    add = commands.add_parser(
        "add",
        help="validate a model file and register it with its class → alert type map",
        description="Load the model, run one dry inference, record its SHA-256, output layout, input size, "
        "classes and licence, and register it. Refused with the reason when the file is not a usable detector.",
    )
    add.add_argument("file", type=Path)
    add.add_argument("--name", required=True)
    add.add_argument("--version", default=None, help="default: the first 12 hex digits of the file's SHA-256")
    add.add_argument("--type", choices=["onnx", "torch"], default=None, help="default: by the file's suffix")
    add.add_argument("--map", required=True, dest="class_map", metavar="CLASS=ALERT_TYPE,…",
                     help="e.g. 'no_hat=no_hat,cigarette=smoking,phone=phone_use'")
    add.add_argument("--areas", default=None, metavar="AREA,…",
                     help="camera areas where its alerts apply, by code or name (e.g. 专间); default: all")
    add.add_argument("--labels", type=Path, default=None, help="class names, one per line (else the model's own)")
    add.set_defaults(handler=_model_add)
    listing = commands.add_parser("list", help="the registered models")
    listing.set_defaults(handler=_model_list)


def models_dir() -> Path:
    from infra.settings import get_settings

    settings = get_settings()
    return settings.models_dir or settings.var_dir / "models"


@_domain_errors_as_refusals
def _model_add(args: argparse.Namespace) -> int:
    from domain.detectors.service import InspectedModel, parse_areas, parse_class_map, register_model
    from vision.detectors.inspect import ModelRejected, inspect_model

    source: Path = args.file
    if not source.is_file():
        raise CommandError(f"no model file at {source}", exit_code=2)
    runtime = args.type or ("torch" if source.suffix == ".pt2" else "onnx")
    class_map = parse_class_map(args.class_map)
    areas = parse_areas(args.areas)
    try:
        info = inspect_model(source, type=runtime, labels_path=args.labels)
    except ModelRejected as rejected:
        raise CommandError(f"model refused: {rejected.reason}") from None
    target_dir = models_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{info.sha256}{source.suffix}"
    if not target.exists():
        partial = target.with_suffix(target.suffix + ".partial")
        shutil.copyfile(source, partial)
        partial.replace(target)  # atomic: a half-copied model is never registered
    inspected = InspectedModel(
        runtime=runtime, sha256=info.sha256, layout=info.layout.value,
        input_width=info.input_width, input_height=info.input_height, classes=info.class_names,
        licence=info.licence,
    )
    with _transaction() as session:
        model = register_model(
            session, name=args.name, version=args.version or info.sha256[:12], inspected=inspected,
            path=str(target), class_map=class_map, areas=areas, registered_by="cli",
        )
        print(f"registered {model.name} {model.version}: {runtime}, layout {model.layout}, input "
              f"{model.input_width}×{model.input_height}, {len(model.classes)} classes, sha256 {model.sha256}, "
              f"licence {model.licence}")
        print("maps " + ", ".join(f"{c} → {t}" for c, t in model.class_map.items())
              + (f"; areas {', '.join(model.areas)}" if model.areas else "; all areas"))
    return 0


def _model_list(args: argparse.Namespace) -> int:
    from domain.detectors.service import list_models

    with _transaction() as session:
        models = list_models(session)
        if not models:
            print("no detector models registered (add one with `sunshine model add FILE --name … --map …`)")
        for model in models:
            state = "enabled" if model.enabled else "disabled"
            print(f"{model.name} {model.version}\t{model.runtime}\t{model.layout}\t{model.sha256[:12]}\t{state}\t"
                  + ",".join(f"{c}={t}" for c, t in model.class_map.items()))
    return 0

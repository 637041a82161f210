"""Regenerate the histories under tests/replay/histories/ from the workflow tests. Run by hand:

    .venv/bin/python tests/replay/record_histories.py

It runs tests/workflows with ``SUNSHINE_RECORD_HISTORIES`` set; each timer-path test exports the history of its
workflow (``export_history``) into that folder, one JSON file per path (``WorkflowHistory.to_json()``).

Re-record after a deliberate change of workflow code only. A history recorded by code that is deployed must keep
replaying: when a change needs ``workflow.patched()``, keep the old files (rename them, e.g. ``*_v1.json``)
next to the new ones, so the replay test proves both the old and the new path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(__file__).resolve().parent / "histories"


def main() -> int:
    from tests.workflows.conftest import HISTORY_DIR_ENV

    TARGET.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, HISTORY_DIR_ENV: str(TARGET)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/workflows"]
    status = subprocess.call(command, cwd=ROOT, env=environment)
    written = sorted(path.name for path in TARGET.glob("*.json"))
    print(f"{len(written)} histories in {TARGET}: {', '.join(written)}")
    return status


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())

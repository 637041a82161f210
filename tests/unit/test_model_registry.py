"""Each models module registers the tables its foreign keys point at, whatever is imported first."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = ["domain.merchants.models", "domain.users.models", "domain.devices.models", "domain.evidence.models",
           "domain.calendar.models",
           "domain.cases.models", "domain.notifications.models", "domain.users.lockout"]


@pytest.mark.parametrize("module", MODULES)
def test_foreign_keys_resolve_when_only_one_models_module_is_imported(module: str) -> None:
    program = (
        f"import {module}\n"
        "from sqlalchemy.orm import configure_mappers\n"
        "from sqlmodel import SQLModel\n"
        "configure_mappers()\n"
        "for table in SQLModel.metadata.sorted_tables:\n"
        "    for fk in table.foreign_keys:\n"
        "        fk.column\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr

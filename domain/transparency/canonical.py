"""Canonical JSON: the one byte string a record hashes to, whoever serialises it.

Sorted keys, no whitespace, UTF-8 without escapes, no NaN or infinity. Only plain JSON values are accepted: a
datetime or UUID has several textual forms, so the caller chooses one (ISO text, ``str``) before hashing.
"""

from __future__ import annotations

import json
import math
from typing import Any

_SCALARS = (str, int, float, bool)


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 JSON encoding of ``value``; TypeError or ValueError for anything not plain JSON."""
    _check(value, "$", set())
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
    ).encode("utf-8")


def _check(value: Any, path: str, open_containers: set[int]) -> None:
    if value is None or isinstance(value, _SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"canonical JSON has no {value!r}: found at {path}")
        return
    if not isinstance(value, dict | list):
        raise TypeError(
            f"canonical JSON takes dict, list, str, int, float, bool or None, not {type(value).__name__} at {path};"
            " convert it first (datetime → ISO text, UUID → str)"
        )
    if id(value) in open_containers:
        raise ValueError(f"canonical JSON cannot encode a circular reference at {path}")
    open_containers.add(id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON object keys must be str, not {type(key).__name__} at {path}")
            _check(item, f"{path}.{key}", open_containers)
    else:
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", open_containers)
    open_containers.discard(id(value))

"""Which message ids the pages use, and which of them a catalog lacks: the check behind the translation test,
and a developer's aid (``python -m api.web.i18n_catalog``) that prints the missing ids as ``.po`` entries."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from api.web.i18n import DEFAULT_LOCALE, catalog_for

API_DIR = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)}
METHOD_MAP = [("web/**.py", "python"), ("templates/**.html", "jinja2")]
JINJA_OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "True",
                                        "lstrip_blocks": "True"}}


def message_ids() -> dict[str, str]:
    """Every message id in the page code and templates → where it was first seen."""
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        API_DIR, METHOD_MAP, options_map=JINJA_OPTIONS, keywords=KEYWORDS
    ):
        ids = message if isinstance(message, tuple) else (message,)
        for message_id in ids:
            if message_id:
                found.setdefault(message_id, f"{filename}:{lineno}")
    return found


def missing_translations(locale: str = DEFAULT_LOCALE) -> dict[str, str]:
    catalog = catalog_for(locale)
    missing = {}
    for message_id, where in message_ids().items():
        entry = catalog.get(message_id)
        if entry is None or not entry.string:
            missing[message_id] = where
    return missing


def _po_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


if __name__ == "__main__":
    for message_id, where in sorted(missing_translations().items(), key=lambda item: item[1]):
        print(f"#: {where}\nmsgid {_po_quote(message_id)}\nmsgstr \"\"\n")

"""Every string the pages show goes through the catalogs, and the zh-CN catalog has all of them."""

from __future__ import annotations

from api.web.i18n import catalog_for, translator
from api.web.i18n_catalog import message_ids, missing_translations


def test_the_pages_use_message_ids() -> None:
    ids = message_ids()
    assert "Sign in" in ids and "Case queue" in ids


def test_every_message_has_a_chinese_translation() -> None:
    missing = missing_translations("zh_CN")
    assert not missing, "untranslated: " + "; ".join(f"{text!r} ({where})" for text, where in missing.items())


def test_placeholders_survive_translation() -> None:
    for message in catalog_for("zh_CN"):
        if message.id and isinstance(message.id, str) and "%(" in message.id:
            names = sorted(part.split(")")[0] for part in message.id.split("%(")[1:])
            translated = sorted(part.split(")")[0] for part in str(message.string).split("%(")[1:])
            assert names == translated, message.id


def test_english_is_the_message_id_itself() -> None:
    assert translator("en").gettext("Case queue") == "Case queue"
    assert translator("zh_CN").gettext("Case queue") == "案件队列"
    assert translator("xx").locale == "zh_CN"


def test_a_message_id_in_several_catalog_files_translates_the_same_everywhere() -> None:
    from pathlib import Path

    from babel.messages.pofile import read_po

    from api.web.i18n import LOCALES_DIR

    first: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in sorted((LOCALES_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        with Path(path).open("rb") as handle:
            for message in read_po(handle):
                if not message.id:
                    continue
                seen = first.setdefault(str(message.id), (path.name, str(message.string)))
                if seen[1] != str(message.string):
                    clashes.append(f"{message.id!r}: {seen} vs {(path.name, message.string)}")
    assert not clashes, "; ".join(clashes)

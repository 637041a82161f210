"""One translation layer for the pages: gettext catalogs, English message ids, zh-CN by default.

Catalogs are the ``.po`` files under ``api/locales/<locale>/LC_MESSAGES/``; every file of a locale is merged
into one catalog (one file per area keeps edits apart). They are compiled in memory at start-up, so the
repository holds only the reviewable ``.po`` text and nothing is built or fetched at run time.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DEFAULT_LOCALE = "zh_CN"
# Message ids are English, so English needs no catalog of its own.
SOURCE_LOCALE = "en"
LOCALES: dict[str, str] = {"zh_CN": "中文", "en": "English"}
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}
LANG_COOKIE = "sunshine_lang"


def N_(message: str) -> str:
    return message


@dataclass(frozen=True)
class Translator:
    locale: str
    translations: gettext.NullTranslations

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def _(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    @property
    def html_lang(self) -> str:
        return HTML_LANG[self.locale]


def catalog_for(locale: str) -> Catalog:
    """Every ``.po`` file of ``locale`` merged into one catalog."""
    merged = Catalog(locale=locale)
    for path in sorted((LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            part = read_po(handle, locale=locale)
        for message in part:
            if message.id:
                merged[message.id] = message
    return merged


@lru_cache(maxsize=len(LOCALES))
def translator(locale: str) -> Translator:
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    if locale == SOURCE_LOCALE:
        return Translator(locale, gettext.NullTranslations())
    buffer = io.BytesIO()
    write_mo(buffer, catalog_for(locale))
    buffer.seek(0)
    return Translator(locale, gettext.GNUTranslations(buffer))


def negotiate_locale(cookie: str | None) -> str:
    """The cookie's choice, else zh-CN: the platform speaks Chinese first, whatever the browser prefers."""
    if cookie in LOCALES:
        return cookie
    return DEFAULT_LOCALE

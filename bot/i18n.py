"""What Haven says, in the language of the person it says it to.

Every text a person sees that Haven itself writes (closure notices, reminders, refusals, failure notes,
the crisis card's framing, buttons, forms, help) lives in ``bot/locales/<language>.toml``, one file per
language, as TOML tables whose keys flatten to ``"table.key"``. English (``en.toml``) is the reference:
every other file has exactly its keys, with the same ``{placeholders}`` (``tests/test_locales.py``).

``strings_for(locale)`` turns whatever a platform says about a person ("es-ES", "pt_BR", "zh-TW",
"es-419", None) into the ``Strings`` of one supported language, English when there is none. Loading is
lazy and cached by ``functools.cache`` on the pure loader, as ``bot.detectors`` caches its tables: the
files are package data and never change while Haven runs.

What stays English: the admins' alerts, digests and admin commands (the workspace's operators, not the
person in the conversation), logs, and what the model is told: its own instructions (``bot.prompts``) and
the stored notes about attached files it did not read (``bot.files.unread_block``; the person's own note
about them is in their language).
"""

from __future__ import annotations

import functools
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

DEFAULT_LANGUAGE = "en"

# Languages with a catalog file. Locales name a language by its ISO 639-1 code, so the code is the
# file's name; Chinese has one file, written in simplified characters (see ``_ALIASES``).
LANGUAGES = (
    "en",
    "es",
    "pt",
    "fr",
    "de",
    "it",
    "ja",
    "ko",
    "zh",
    "hi",
    "ar",
    "tr",
    "pl",
    "nl",
    "ru",
    "id",
)

# Codes that platforms send for a language we have under another name: "in" is the old ISO code of
# Indonesian (Java's locales still send it); "nb"/"no"-style aliases would go here too.
_ALIASES: Mapping[str, str] = MappingProxyType({"in": "id"})


def language_of(locale: str | None) -> str:
    """The supported language for a platform's locale: "pt-BR" / "pt_BR" → "pt", "es-419" → "es",
    "zh-TW" → "zh", an unknown or missing locale → English."""
    if not locale:
        return DEFAULT_LANGUAGE
    code = locale.strip().replace("_", "-").split("-")[0].lower()
    code = _ALIASES.get(code, code)
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def placeholders(text: str) -> frozenset[str]:
    """The ``{names}`` a text is formatted with."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


@dataclass(frozen=True, slots=True)
class Strings:
    """One language's texts. ``strings("notice.closed")``, ``strings("notice.new", how=...)``.

    ``fallback`` is English, for a key a translation lacks (the completeness test keeps that from
    happening; this keeps a person from ever seeing a key instead of a sentence).
    """

    language: str
    texts: Mapping[str, str]
    fallback: Strings | None = None

    def __call__(self, key: str, /, **values: object) -> str:
        text = self.texts.get(key)
        if text is None:
            if self.fallback is None:
                raise KeyError(key)
            return self.fallback(key, **values)
        return text.format(**values) if values else text

    def localise(self, english: str) -> str:
        """An English text the core wrote without knowing who would read it (a failure note, a
        refusal; see ``bot.presentation``) in this language; any other text as it is."""
        key = _english_index().get(english)
        return self(key) if key is not None else english


def _flatten(table: Mapping[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, str):
            flat[name] = value
        else:
            raise ValueError(f"locale entry {name} is not text")
    return flat


def parse(text: str) -> dict[str, str]:
    """A catalog file's text as flat ``{"table.key": text}``."""
    return _flatten(tomllib.loads(text))


def read_catalog_file(language: str) -> str:
    return resources.files("bot").joinpath("locales", f"{language}.toml").read_text("utf-8")


@functools.cache
def _load(language: str) -> Strings:
    texts = MappingProxyType(parse(read_catalog_file(language)))
    fallback = None if language == DEFAULT_LANGUAGE else _load(DEFAULT_LANGUAGE)
    return Strings(language, texts, fallback)


@functools.cache
def _english_index() -> Mapping[str, str]:
    """English text → its key. Only texts without placeholders can be met whole; the first key wins
    for a text used twice."""
    index: dict[str, str] = {}
    for key, text in _load(DEFAULT_LANGUAGE).texts.items():
        if not placeholders(text):
            index.setdefault(text, key)
    return MappingProxyType(index)


def strings_for(locale: str | None) -> Strings:
    """The texts for a person whose platform reports ``locale`` (English when unknown)."""
    return _load(language_of(locale))


def english() -> Strings:
    return _load(DEFAULT_LANGUAGE)

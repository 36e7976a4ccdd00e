"""Explicit first-person suicidal statements in the languages people write at work reach ``likely``.

Written by hand (common, plain phrasings: "I want to die", "I'm going to kill myself", "I don't want to
live anymore"), none taken from the evaluation files. Each language also has an idiom that must stay
unmarked, so a rule cannot pass by matching the language's word for "die".
"""

from __future__ import annotations

import pytest

from bot.detectors import RiskLevel, assess_risk

EXPLICIT = {
    "en": ["i want to die", "i'm going to kill myself tonight"],
    "es": ["quiero morir", "me voy a suicidar", "ya no quiero vivir"],
    "pt": ["quero morrer", "vou me matar", "não quero mais viver"],
    "fr": ["je veux mourir", "je vais me suicider", "je veux en finir avec la vie"],
    "de": ["ich will sterben", "ich bringe mich um", "ich will nicht mehr leben"],
    "it": ["voglio morire", "mi voglio uccidere", "non voglio più vivere"],
    "ru": ["я хочу умереть", "хочу покончить с собой", "я больше не хочу жить"],
    "ja": ["死にたい", "自殺したい", "もう生きていたくない"],
    "zh": ["我想死", "我想自杀", "我不想活了"],
    "ko": ["죽고 싶다", "자살하고 싶어", "더 이상 살고 싶지 않아"],
    "hi": ["मैं मरना चाहता हूँ", "मैं आत्महत्या करना चाहती हूँ"],
    "ar": ["أريد أن أموت", "أريد الانتحار", "سأنتحر"],
    "tr": ["ölmek istiyorum", "kendimi öldüreceğim", "intihar etmek istiyorum"],
    "pl": ["chcę umrzeć", "zabiję się", "nie chcę już żyć"],
    "nl": ["ik wil dood", "ik wil niet meer leven", "ik ga zelfmoord plegen"],
    "id": ["aku ingin mati", "aku mau bunuh diri", "saya ingin mengakhiri hidup saya"],
    "bn": ["আমি মরতে চাই", "আমি আত্মহত্যা করতে চাই"],
}

# Idioms with the language's word for dying or killing: no mark at all.
IDIOMS = {
    "es": "me muero de risa",
    "pt": "morri de rir",
    "fr": "je meurs de faim",
    "de": "ich lach mich tot",
    "it": "mi ammazzo dalle risate",
    "ru": "умираю со смеху",
    "ja": "お腹が空いて死にそう",
    "zh": "笑死我了",
    "ko": "배고파 죽겠다",
    "ar": "أموت من الضحك",
    "tr": "gülmekten ölüyorum",
    "pl": "umieram ze śmiechu",
    "nl": "ik lach me dood",
    "id": "mati ketawa",
}

CASES = [(lang, text) for lang, texts in EXPLICIT.items() for text in texts]


def test_the_table_covers_the_languages_issue_9_names() -> None:
    required = {"es", "pt", "fr", "de", "it", "ru", "ja", "zh", "ko", "hi", "ar", "tr", "pl", "nl", "id"}
    assert required <= set(EXPLICIT)


@pytest.mark.parametrize(("lang", "text"), CASES, ids=[f"{lang}:{text}" for lang, text in CASES])
def test_explicit_statements_are_likely_self_harm(lang: str, text: str) -> None:
    result = assess_risk(text)
    assert result.level is RiskLevel.LIKELY, (lang, text, result)
    assert result.kind == "self_harm"
    assert any(f".{lang}." in cue for cue in result.cues) or lang == "en", result.cues


@pytest.mark.parametrize(("lang", "text"), sorted(IDIOMS.items()))
def test_idioms_are_not_marked(lang: str, text: str) -> None:
    assert assess_risk(text).level is RiskLevel.NONE, (lang, text)


# Threats against others: an explicit first-person intent against a third person is a crisis card; a
# threat at the addressee ("I'll kill you") is most often said to the bot, so it is a soft mark; a call
# for violence against a group is a soft mark; the language's idiom with "kill" is nothing.
THREATS = {
    "es": ("voy a matar a mi jefe", "te voy a matar", "hay que matarlos a todos", "matar el tiempo"),
    "pt": ("vou matar o meu chefe", "vou te matar", "tem que matar todos eles", "matar a saudade"),
    "fr": ("je vais tuer mon voisin", "je vais te tuer", "il faut tous les pendre", "tuer le temps"),
    "it": ("ammazzerò il mio capo", "ti ammazzo", "bisogna impiccarli tutti", "ammazzare il tempo"),
    "nl": ("ik ga mijn baas vermoorden", "ik ga je vermoorden", "we moeten ze ophangen", "ik lach me dood"),
    "pl": ("ja zabiję mojego szefa", "zabiję cię", "trzeba ich wszystkich powiesić", "umieram ze śmiechu"),
    "de": (
        "ich bringe meinen chef um",
        "ich bring dich um",
        "man sollte sie alle erschießen",
        "ich lach mich tot",
    ),
}
THREAT_CASES = [
    (lang, text, level)
    for lang, (intent, addressee, call, idiom) in THREATS.items()
    for text, level in (
        (intent, RiskLevel.LIKELY),
        (addressee, RiskLevel.POSSIBLE),
        (call, RiskLevel.POSSIBLE),
        (idiom, RiskLevel.NONE),
    )
]


@pytest.mark.parametrize(
    ("lang", "text", "level"), THREAT_CASES, ids=[f"{c[0]}:{c[1]}" for c in THREAT_CASES]
)
def test_threats_to_others(lang: str, text: str, level: RiskLevel) -> None:
    result = assess_risk(text)
    assert result.level is level, (lang, text, result)
    if level is not RiskLevel.NONE:
        assert result.kind == "harm_to_others"

"""The risk detector: table-driven cases and properties.

The cases are written by hand from how people talk at work and how people in distress write; none is
copied from the evaluation files (those are measured in test_detectors_eval.py).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.detectors import HARM_TO_OTHERS, SELF_HARM, RiskAssessment, RiskLevel, assess_risk, normalize_text

NONE, POSSIBLE, LIKELY = RiskLevel.NONE, RiskLevel.POSSIBLE, RiskLevel.LIKELY


# Everyday team chat with violent words. None of these may raise any risk signal.
WORKPLACE_IDIOMS = [
    "this bug is killing me",
    "kill -9 the worker",
    "shoot me a DM",
    "the build died",
    "I'd murder a burrito",
    "kill the process",
    "fire the event",
    "execute the script",
    "this crashes",
    "I'm going to kill this bug today",
    "can you shoot me an email with the details?",
    "we need to kill the zombie processes on node 3",
    "the deploy bombed again",
    "my back is killing me after that standup",
    "I could kill for a coffee right now",
    "just hit me up when you're free",
    "let's kill the feature flag",
    "time to execute the migration",
    "nuke the cache and restart the pod",
    "the server hangs on startup",
    "we crushed the sprint goals",
    "I'll beat you at ping pong later",
    "the parser chokes on unicode input",
    "the worker died with OOM again",
    "kill them all with pkill",
    "he's going to kill me if I miss the deadline lol",
    "dying to try the new ramen place",
    "I died laughing at that meme",
    "please fire the webhook again",
    "can we shoot for Friday?",
    "the app is hanging again",
    "kill the child process before the parent exits",
    "this PR is a suicide mission for our test suite",
    "the tests are dead, long live the tests",
    "shoot, I forgot to push",
    "that demo absolutely slayed",
    "we should kill two birds with one stone here",
    "I'm going to murder this leaderboard",
    "the old API is dead, use v2",
    "our CI pipeline is a massacre of flaky tests",
    "stab in the dark, but maybe it's a race condition?",
    "I'll take a shot at fixing the flaky test",
    "drop the table and rerun the seed script",
    "terminate the EC2 instance when you're done",
]

SELF_HARM_LIKELY = [
    "I want to kill myself",
    "i'm going to end my life tonight",
    "I have been cutting myself again",
    "I just want to die",
    "I wish I was dead",
    "i've been having suicidal thoughts",
    "I took a whole bottle of pills",
    "I don't want to live anymore",
    "thinking about jumping off a bridge",
    "im suicidal",
    "I hope I never wake up",
    "there's no reason to live",
    "I'm planning to hang myself",
    "I bought a rope to hang myself",
    "I keep thinking about killing myself",
    "i wanna die",
    "I'm going to overdose on my pills",
    "I deserve to die",
    "I want to slit my wrists",
    "I'm going to jump in front of a train",
    "I am going to take my own life",
]

DISTRESS_POSSIBLE = [
    "I feel so alone and nobody cares about me",
    "I can't do this anymore",
    "I've been crying every night",
    "I'm worthless",
    "everyone would be better off without me",
    "I hate myself so much",
    "i feel empty inside",
    "I'm exhausted and I can't cope anymore",
    "my girlfriend left me and I can't stop crying",
    "I haven't slept in days because I keep worrying about everything",
    "I'm such a burden to my family",
    "nothing ever gets better",
    "I feel hopeless",
    "what's the point of living",
    "I'm so lonely",
    "I'm falling apart",
    "I'm having panic attacks every day",
    "I'm a failure at everything",
    "I just want to disappear",
    "I feel numb",
    "my mom died last month and I can't stop thinking about it",
    "I'm not okay",
    "I feel like nobody would notice if I was gone",
    "I've been drinking every night just to forget",
    "I'm so depressed",
]

THREAT_LIKELY = [
    "I'm going to kill him",
    "I will shoot my boss tomorrow",
    "I'm going to stab her",
    "I'm bringing a gun to school tomorrow",
    "I want to hurt someone",
    "we will kill all of them",
    "I'm going to beat him up after work",
    "I'm going to shoot up the office",
]

THREAT_POSSIBLE = [
    "those people should be shot",
    "death to all immigrants",
    "someone should stab that guy",
    "I could kill him for that",
    "I will kill you",  # most often said to the bot: no helpline card; an ending needs the verifier
    "I will make them suffer",  # harm without a named act: the verifier judges
    "I wish they would all die",
    "the world would be better off without those people",
    "let's get rid of them once and for all, they are vermin people",
]

# Negation, quoting, reporting and denouncing: not the user's own threat.
NOT_A_THREAT = [
    "I'm not going to hurt anyone",
    "I would never hurt anyone",
    "I won't hurt you, I promise",
    "he said he'd kill them",
    "saying 'I will kill X' is awful",
    'saying "I will kill all immigrants" is awful',
    'If you say "I will kill them all", you are a monster',
    "Threatening to kill people is a crime",
    "nobody should ever hurt a child",
    "it is wrong to kill people",
    "I never said that those people should be shot",
    "we must not let anyone hurt them",
    "she told me her neighbour threatened to shoot him",
]

# Self-harm words in reported, negated or joking form still keep the conversation open.
SELF_HARM_DOWNGRADED = [
    "I'm not going to kill myself, don't worry",
    "lol I want to die, this meeting is endless",
    'my friend said "I want to kill myself"',
    "she keeps saying she wants to kill herself",
    "I would kill myself if I had to write Java again",
]

HEALTH_QUESTIONS = [
    "I have a fever and cough, should I get tested for covid?",
    "what is the dosage of ibuprofen for a child?",
    "my chest hurts when I breathe, is it pneumonia?",
    "can I take paracetamol with antibiotics?",
    "how long is the incubation period of the flu?",
    "my daughter has a sore throat and a temperature of 39 degrees",
    "is it safe to get the vaccine while pregnant?",
]


@pytest.mark.parametrize("text", WORKPLACE_IDIOMS)
def test_workplace_idioms_raise_nothing(text: str) -> None:
    assert assess_risk(text) == RiskAssessment(NONE, None, ())


@pytest.mark.parametrize("text", SELF_HARM_LIKELY)
def test_explicit_self_harm_is_likely(text: str) -> None:
    result = assess_risk(text)
    assert result.level is LIKELY
    assert result.kind == SELF_HARM


@pytest.mark.parametrize("text", DISTRESS_POSSIBLE)
def test_plain_words_distress_is_at_least_possible(text: str) -> None:
    result = assess_risk(text)
    assert result.level >= POSSIBLE
    assert result.kind == SELF_HARM


@pytest.mark.parametrize("text", THREAT_LIKELY)
def test_explicit_threats_are_likely(text: str) -> None:
    result = assess_risk(text)
    assert result.level is LIKELY
    assert result.kind == HARM_TO_OTHERS


@pytest.mark.parametrize("text", THREAT_POSSIBLE)
def test_wishes_calls_and_second_person_threats_are_possible(text: str) -> None:
    result = assess_risk(text)
    assert result.level is POSSIBLE
    assert result.kind == HARM_TO_OTHERS


@pytest.mark.parametrize("text", NOT_A_THREAT)
def test_negated_quoted_and_reported_threats_are_not_flagged(text: str) -> None:
    assert assess_risk(text).level is NONE


@pytest.mark.parametrize("text", SELF_HARM_DOWNGRADED)
def test_negated_quoted_reported_or_joking_self_harm_is_possible_not_likely(text: str) -> None:
    result = assess_risk(text)
    assert result.level is POSSIBLE
    assert result.kind == SELF_HARM


@pytest.mark.parametrize("text", HEALTH_QUESTIONS)
def test_health_questions_are_not_flagged(text: str) -> None:
    assert assess_risk(text).level is NONE


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("", NONE),
        ("   \n\t ", NONE),
        ("ok", NONE),
        ("thanks, that fixed it!", NONE),
        ("I'm going to kill him", LIKELY),
        ("I'm going to kill him lol", POSSIBLE),  # a joke marker never leaves a LIKELY
        ("I’m going to kill myself", LIKELY),  # typographic apostrophe
        ("I'M GOING TO KILL MYSELF", LIKELY),
        ("i'm gonna k1ll mys3lf", LIKELY),  # digits standing in for letters
        ("I am soooo lonely", POSSIBLE),
        ("I'm killing myself over this deadline", NONE),  # an overwork idiom
        ("I could shoot myself in the foot with this API", NONE),
        ("I was cut myself shaving, ouch", NONE),
        ("I cut myself while cooking dinner", NONE),
        ("kill me now, another 2 hour meeting", POSSIBLE),  # hyperbole, but no ending over it
    ],
)
def test_edge_cases(text: str, level: RiskLevel) -> None:
    assert assess_risk(text).level is level


def test_cues_are_short_names_never_the_users_text() -> None:
    text = "I feel hopeless and I want to kill myself because nobody cares"
    result = assess_risk(text)
    assert result.cues
    for cue in result.cues:
        # "<kind>.<lang>.<rule>": a rule's name, never words of the message
        assert re.fullmatch(r"[a-z_]+\.[a-z]{2}\.[a-z0-9_]+", cue), cue
        assert cue not in normalize_text(text)
    assert result.cues == tuple(sorted(set(result.cues)))


def test_no_signal_means_no_kind_and_no_cues() -> None:
    assert assess_risk("the build is green again") == RiskAssessment(NONE, None, ())


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------

BENIGN_SENTENCES = [
    "The standup moved to 10am.",
    "Can someone review my PR before lunch?",
    "Thanks for the quick fix!",
    "The dashboard shows the new metrics now.",
    "I pushed the changes to the staging branch.",
    "Let's sync after the retro.",
    "Docs are updated in the wiki.",
]
RISK_PHRASES = SELF_HARM_LIKELY[:6] + DISTRESS_POSSIBLE[:6] + THREAT_LIKELY[:4] + WORKPLACE_IDIOMS[:8]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_never_crashes_on_arbitrary_unicode(text: str) -> None:
    result = assess_risk(text)
    assert isinstance(result.level, RiskLevel)
    assert (result.kind is None) == (result.level is NONE)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x3F)))
def test_never_crashes_on_control_characters(text: str) -> None:
    assess_risk(text)


@settings(max_examples=5, deadline=None)
@given(st.text(min_size=1, max_size=20).map(lambda s: (s * (100_000 // len(s) + 1))[:100_000]))
def test_never_crashes_on_100k_characters(text: str) -> None:
    assess_risk(text)


def test_100k_character_message_with_risk_at_the_end_is_still_seen() -> None:
    text = "lorem ipsum dolor sit amet. " * 4000 + "I want to kill myself."
    assert assess_risk(text).level is LIKELY


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_deterministic(text: str) -> None:
    assert assess_risk(text) == assess_risk(text)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(RISK_PHRASES),
    st.text(alphabet=" \t\n\r", max_size=5),
    st.text(alphabet=" \t\n", max_size=5),
)
def test_padding_does_not_change_the_level(phrase: str, left: str, right: str) -> None:
    assert assess_risk(left + phrase + right).level is assess_risk(phrase).level


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(RISK_PHRASES), st.lists(st.booleans(), min_size=80, max_size=80))
def test_case_does_not_change_the_level(phrase: str, flips: list[bool]) -> None:
    mixed = "".join(c.upper() if flip else c.lower() for c, flip in zip(phrase, flips * 4, strict=False))
    assert assess_risk(mixed).level is assess_risk(phrase).level
    assert assess_risk(phrase.upper()).level is assess_risk(phrase).level


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_case_does_not_change_the_level_on_ascii_noise(text: str) -> None:
    assume(text.upper().casefold() == text.casefold())
    assert assess_risk(text.upper()).level is assess_risk(text.lower()).level


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(WORKPLACE_IDIOMS),
    st.lists(st.sampled_from(BENIGN_SENTENCES), max_size=3),
    st.lists(st.sampled_from(BENIGN_SENTENCES), max_size=3),
)
def test_benign_idiom_stays_benign_among_benign_sentences(
    idiom: str, before: list[str], after: list[str]
) -> None:
    text = " ".join([*before, idiom + ".", *after])
    assert assess_risk(text).level is NONE


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(SELF_HARM_LIKELY + THREAT_LIKELY),
    st.lists(st.sampled_from(BENIGN_SENTENCES), max_size=3),
    st.lists(st.sampled_from(BENIGN_SENTENCES), max_size=3),
)
def test_explicit_risk_stays_likely_among_benign_sentences(
    phrase: str, before: list[str], after: list[str]
) -> None:
    text = " ".join([*before, phrase + ".", *after])
    assert assess_risk(text).level is LIKELY


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("i can't sleep again", NONE),  # one symptom is an ordinary day
        ("i'm so lonely", POSSIBLE),  # (a first-person statement of loneliness is its own family)
        ("i can't sleep and i cried for an hour", POSSIBLE),  # two symptom families
        ("i can't sleep. i slept all day yesterday", NONE),  # one family twice
        ("i'm drunk again lol and i can't sleep", NONE),  # a symptom said laughing does not count
        ("i'm tired after the deploy and sad that the build failed", NONE),  # work, not symptoms
    ],
)
def test_symptoms_count_only_in_clusters(text: str, level: RiskLevel) -> None:
    assert assess_risk(text).level is level, assess_risk(text)

"""Figurative death and despair in Spanish, Portuguese, Italian, French and German, next to the literal
statements made of the same words.

The English tables (``test_detectors_figurative.py``) have counterparts here, family by family:

* "die of" hyperbole: morir(se) de / morrer de / morire di / mourir de / sterben vor + a bodily state or a
  feeling ("me muero de hambre", "morri de rir", "muoio dalla fame", "je meurs de faim", "ich sterbe vor
  Hunger"), the French elided form included ("mourir d'ennui");
* idioms whose literal reading is death: killing time ("matar el tiempo", "tuer le temps"), something
  that "kills" the writer (shoes, heat, traffic), "being dead" after exertion, "let them kill me";
* a death wish tied, in its own clause, to a leisure, sport, food, weather, transport or chore event, or
  to a small mishap ("me quiero morir con este tráfico", "perdi o ônibus de novo e quero morrer"): no
  crisis card, though a soft mark may remain for the verifier to judge.

Work, school, exams, money, health, relationships and people are not everyday events here: a wish to
die over them keeps its level, as does a wish to kill oneself whatever it is tied to ("me quiero matar
después del partido"), as in English. Every sentence was written by hand for these tables.
"""

from __future__ import annotations

import pytest

from bot.detectors import RiskLevel, assess_risk

NONE, POSSIBLE, LIKELY = RiskLevel.NONE, RiskLevel.POSSIBLE, RiskLevel.LIKELY

# -- figurative: nothing to mark ------------------------------------------------------------------------

SPANISH = [
    # die of + a bodily state or a feeling
    "me muero de hambre",
    "me muero de risa con este vídeo",
    "me estoy muriendo de calor en el metro",
    "me muero de sueño",
    "me muero de aburrimiento en esta cola",
    "me voy a morir de aburrimiento en la sala de espera",
    "quiero morirme de la vergüenza",
    "casi me muero del susto cuando se fue la luz",
    "me muero por unas vacaciones en la playa",
    # idioms
    "que me maten, otra vez lunes",
    "estoy muerto después del partido",
    "estoy muerta de cansancio después de limpiar la casa",
    "vamos a matar el tiempo en el centro comercial",
    "matamos el tiempo jugando a las cartas",
    "el tráfico de hoy me está matando",
    "estos zapatos me están matando",
    "este calor me va a matar",
]

PORTUGUESE = [
    "tô morrendo de fome",
    "morri de rir com esse vídeo",
    "vou morrer de tédio nessa fila",
    "morrendo de saudade da praia",
    "quase morri de susto quando acabou a luz",
    "to morrendo de vontade de comer pizza",
    "quero morrer de vergonha",
    "morri de vergonha no churrasco",
    "vou morrer de calor nesse ônibus",
    "estou morto depois do jogo",
    "tô morta de cansaço depois da faxina",
    "esse calor tá me matando",
    "esses sapatos estão me matando",
    "esse programa me mata de rir",
    "vamos matar o tempo no shopping",
    "que me matem, segunda-feira de novo",
]

ITALIAN = [
    "muoio dalla fame",
    "sto morendo di caldo in metro",
    "morivo dal ridere con quel video",
    "sono morta dal ridere",
    "muoio di noia in questa coda",
    "sono morto dopo la partita",
    "ammazzare il tempo al centro commerciale",
    "questo traffico mi uccide",
    "queste scarpe mi stanno uccidendo",
    "che mi ammazzino, di nuovo lunedì",
]

FRENCH = [
    "je meurs de faim",
    "je suis mort de rire devant cette vidéo",
    "je vais mourir d'ennui dans cette file d'attente",
    "je meurs d'envie de manger une pizza",
    "je veux mourir de honte",
    "je suis morte de fatigue après le ménage",
    "je suis mort après le match",
    "on tue le temps au centre commercial",
    "ces chaussures me tuent",
    "cette chaleur me tue",
    "tuez-moi, encore un lundi",
]

GERMAN = [
    "ich sterbe vor Hunger",
    "ich sterbe vor Durst",
    "ich könnte sterben vor Lachen",
    "ich will sterben vor Scham",
    "ich sterbe vor Langeweile in dieser Schlange",
    "ich lach mich tot über dieses Video",
    "ich bin tot nach dem Spiel",
    "ich bin todmüde nach dem Putzen",
    "diese Hitze bringt mich um",
    "die Schuhe bringen mich um",
    "wir schlagen die Zeit im Einkaufszentrum tot",
]

# A death wish tied, in its own clause, to an everyday event: hyperbole, never a crisis card. A soft mark
# may remain (the independent verifier then judges the conversation before any ending): a wish to die
# is never read as nothing on the strength of a word list.
WISH_WITH_EVERYDAY_EVENT = [
    "me quiero morir con este calor",
    "me quiero morir con este tráfico",
    "se me olvidó el paraguas otra vez y me quiero morir",
    "me quiero morir con lo mal que jugó mi equipo",
    "me dan ganas de morir cada vez que pierde mi equipo",
    "qué ganas de morirme con este partido",
    "me quiero morir cuando llueve en fin de semana",
    "hoy toca limpiar el baño otra vez y me quiero morir",
    "me quiero morir lavando platos",
    "me quiero morir en esta fila del super",
    "tengo ganas de morirme con tanto calor",
    "quero morrer com esse calor",
    "quero morrer com esse trânsito",
    "perdi o ônibus de novo e quero morrer",
    "me dá vontade de morrer toda vez que meu time perde",
    "quero morrer com esse jogo",
    "eu quero morrer lavando essa louça toda",
    "quero morrer nessa fila do banco",
    "esqueci o guarda-chuva de novo e quero morrer",
    "voglio morire con questo caldo",
    "voglio morire con questo traffico",
    "ho perso di nuovo il treno e voglio morire",
    "mi viene voglia di morire ogni volta che perde la mia squadra",
    "j'ai envie de mourir avec cette chaleur",
    "j'ai envie de mourir avec ces bouchons",
    "j'ai encore raté le bus et j'ai envie de mourir",
    "ich will sterben bei dieser Hitze",
    "ich will sterben bei diesem Stau",
    "der Zug hat schon wieder Verspätung und ich will sterben",
]

# The same, split by a comma: a clause that is only the wish, beside a clause naming the event.
ACROSS_A_COMMA = [
    "me quiero morir, se me olvidó el paraguas otra vez",
    "quiero morir, otra vez perdí el autobús",
    "quero morrer, perdi o ônibus de novo",
    "voglio morire, ho perso di nuovo il treno",
    "j'ai envie de mourir, encore un lundi",
    "ich will sterben, schon wieder Montag",
]

# A feeling tied in its clause to an everyday event is a reaction to it, as in English.
FEELING_WITH_EVERYDAY_EVENT = [
    "ich fühle mich so leer nach dem Spiel",
    "je me sens vide après le match",
    "mi sento inutile con questa pioggia",
    "me siento sola con este calor",
]

# Lost, exhausted or useless *with* a device, software, a form or a chore: frustration with a task.
FEELING_ABOUT_A_TASK = [
    "je me sens perdu avec cette nouvelle version du logiciel",
    "ich bin total erschöpft von der Steuererklärung",
    "ich fühle mich nutzlos ohne Internet",
    "mi sento perso con questo nuovo telefono",
    "me siento inútil sin internet",
    "ik voel me nutteloos zonder koffie",
]

# The same feelings with nothing to tie them to keep their soft mark.
FEELING_ALONE_POSSIBLE = [
    "je me sens perdu depuis des mois",
    "ich fühle mich nutzlos und leer",
    "mi sento persa e sola",
    "ik voel me nutteloos",
    "ich fühle mich so leer und wertlos",
    "je me sens vide depuis des mois",
    "mi sento inutile, nessuno mi vuole",
    "me siento inútil y sola, nadie me quiere",
]

# -- literal: the level each had before the figurative exceptions, unchanged ----------------------------

LITERAL_LIKELY = [
    # es
    "quiero morir",
    "me quiero morir",
    "me quiero matar",
    "ya no quiero vivir",
    "voy a suicidarme esta noche",
    "quiero desaparecer para siempre",
    "no quiero despertar mañana",
    "ojalá me muera esta noche",
    "me quiero morir, nadie me quiere",
    # pt
    "quero morrer",
    "quero me matar",
    "não quero mais viver",
    "vou me matar hoje à noite",
    "vou me suicidar",
    "queria estar morto",
    # it
    "voglio morire",
    "voglio uccidermi",
    "mi voglio ammazzare",
    "non voglio più vivere",
    # fr
    "je veux mourir",
    "je veux me tuer",
    "je vais me suicider ce soir",
    "je ne veux plus vivre",
    "j'ai envie de mourir",
    # de
    "ich will sterben",
    "ich will nicht mehr leben",
    "ich bringe mich um",
    "ich will mich umbringen",
    "ich bringe mich heute Nacht um",
]

# A real stressor (work, exams, family, a partner) is not an everyday event, in the same clause or the next.
LITERAL_STRESSOR_LIKELY = [
    "me quiero morir, mañana tengo examen y no he estudiado nada",
    "me quiero morir con todo lo del trabajo",
    "me quiero morir con este examen",
    "me quiero morir con esta tarea de química",
    "me quiero morir con mi familia así",
    "quero morrer, amanhã tenho prova e não estudei nada",
    "quero morrer com essa prova",
    "voglio morire, domani ho l'esame e non ho studiato niente",
    "voglio morire con questo esame",
    "j'ai envie de mourir, demain j'ai un examen et j'ai rien révisé",
    "j'ai envie de mourir avec cet examen",
    "ich will sterben, morgen habe ich eine Prüfung und habe nichts gelernt",
    "ich will sterben bei dieser Prüfung",
]

# Killing oneself, unlike dying, is not hyperbole even next to an everyday event (as in English).
# A time set for dying, right beside the wish, is a plan whatever event the clause also names.
DATED_WISH_LIKELY = [
    "me quiero morir esta noche después del partido",
    "esta noche me quiero morir",
    "quero morrer hoje depois do jogo",
    "voglio morire stasera dopo la partita",
    "je veux mourir ce soir après le match",
]

# A weekday is an everyday event only when generic or repeated ("los lunes"): a wish to die on a named
# day is a plan, and keeps its level.
NAMED_DAY_LIKELY = [
    "quiero morir el lunes",
    "quero morrer na segunda feira",
    "voglio morire lunedì",
    "je veux mourir ce lundi",
    "ich will sterben vor dem Montag",
]

KILL_ONESELF_WITH_EVERYDAY_EVENT_LIKELY = [
    "después del partido me quiero matar",
    "depois do jogo quero me matar",
    "quero me matar com esse calor",
    "je veux me tuer avec cette chaleur",
    "ich will mich umbringen bei dieser Hitze",
]


@pytest.mark.parametrize("text", SPANISH + PORTUGUESE + ITALIAN + FRENCH + GERMAN)
def test_figurative_death_and_despair_raises_nothing(text: str) -> None:
    assert assess_risk(text).level is NONE, text


@pytest.mark.parametrize("text", WISH_WITH_EVERYDAY_EVENT + ACROSS_A_COMMA)
def test_a_death_wish_tied_to_an_everyday_event_shows_no_crisis_card(text: str) -> None:
    assert assess_risk(text).level is not LIKELY, text


@pytest.mark.parametrize(
    "text",
    LITERAL_LIKELY
    + LITERAL_STRESSOR_LIKELY
    + KILL_ONESELF_WITH_EVERYDAY_EVENT_LIKELY
    + NAMED_DAY_LIKELY
    + DATED_WISH_LIKELY,
)
def test_literal_statements_keep_their_level(text: str) -> None:
    assert assess_risk(text).level is LIKELY, text


@pytest.mark.parametrize("text", FEELING_WITH_EVERYDAY_EVENT + FEELING_ABOUT_A_TASK)
def test_a_feeling_tied_to_an_everyday_event_raises_nothing(text: str) -> None:
    assert assess_risk(text).level is NONE, text


@pytest.mark.parametrize("text", FEELING_ALONE_POSSIBLE)
def test_the_same_feeling_untied_keeps_its_soft_mark(text: str) -> None:
    assert assess_risk(text).level is POSSIBLE, text

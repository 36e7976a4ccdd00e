"""Abuse detector: insults, slurs, harassment (incl. sexual harassment of the bot), hostile dismissal,
threats and death wishes at the bot, and demands for harmful content.

Used by the offline rehearsal model to decide when to propose ending a conversation; the engine's policy
still warns first (HOLD_WARN) and vetoes on any risk signal, so a false positive here costs a warning,
not an ending. Profanity inside an ordinary sentence ("fuck, the build broke again") is not abuse: team
workspaces swear at their tools all day. A message that is *only* an expletive, or that aims one at the
bot, is.

Pure, deterministic, no network, no mutable module state.
"""

from __future__ import annotations

import re

from bot.detectors.risk import head_and_tail, normalize_text

__all__ = ["SLURS", "is_abusive"]

# Slurs: identity-based terms of abuse, listed so that they can be recognised. A reclaimed in-group use
# is better handled by the model than by ending a conversation, and this detector never ends anything
# on its own.
SLURS = frozenset(
    [
        "nigger",
        "niggers",
        "nigga",
        "niggas",
        "negro",
        "negroes",
        "coon",
        "coons",
        "darkie",
        "darkies",
        "spook",
        "spooks",
        "jigaboo",
        "porchmonkey",
        "chink",
        "chinks",
        "gook",
        "gooks",
        "zipperhead",
        "jap",
        "japs",
        "paki",
        "pakis",
        "wog",
        "wogs",
        "raghead",
        "ragheads",
        "towelhead",
        "towelheads",
        "sandnigger",
        "kike",
        "kikes",
        "yid",
        "yids",
        "heeb",
        "hebe",
        "spic",
        "spics",
        "spick",
        "wetback",
        "wetbacks",
        "beaner",
        "beaners",
        "greaser",
        "redskin",
        "redskins",
        "squaw",
        "faggot",
        "faggots",
        "fag",
        "fags",
        "dyke",
        "dykes",
        "lesbo",
        "lesbos",
        "homo",
        "homos",
        "poof",
        "poofs",
        "poofter",
        "tranny",
        "trannies",
        "shemale",
        "shemales",
        "ladyboy",
        "retard",
        "retards",
        "retarded",
        "spaz",
        "spastic",
        "mong",
        "mongoloid",
        "gimp",
        "whore",
        "whores",
        "slut",
        "sluts",
        "skank",
        "thot",
        "thots",
        "feminazi",
        "feminazis",
    ]
)

_INSULT_NOUNS = (
    r"idiot|idiots|moron|morons|imbecile|cretin|fool|loser|losers|bitch|bitches|bastard|asshole|assholes|"
    r"arsehole|dick|dickhead|prick|cunt|cunts|twat|wanker|jerk|douche|douchebag|scumbag|scum|creep|freak|"
    r"dumbass|dumb ass|jackass|dipshit|shithead|motherfucker|mother fucker|fucker|fuckface|cock|cocksucker|"
    r"pussy|pig|cow|clown|donkey|weirdo|airhead|bimbo|dork|numpty|tosser|bellend|butt ?boy|butthead|"
    r"buttface|piece of (?:shit|crap|garbage|trash|junk)|waste of (?:space|time|money|electricity|code)|"
    r"son of a bitch|hag|slag|tramp|degenerate|pervert|perv|psycho|lunatic|nutjob|disgrace|turd|"
    r"nitwit|halfwit|dimwit|simpleton|dunce|ignoramus|buffoon|toaster|tin can|punk ass|dumbo"
)
# Insults strong enough to be abuse wherever they stand in a short message ("indeed moron").
_STRONG_INSULTS = (
    r"idiot|moron|imbecile|bitch|bastard|asshole|arsehole|dickhead|cunt|twat|wanker|douchebag|scumbag|"
    r"dumbass|jackass|dipshit|shithead|motherfucker|fucker|fuckface|cocksucker|retard|retarded|butt ?boy"
)
_INSULT_ADJ = (
    r"stupid|dumb|useless|worthless|pathetic|retarded|brainless|clueless|incompetent|ignorant|idiotic|"
    r"moronic|annoying|irritating|boring|lame|crap|crappy|shit|shitty|rubbish|garbage|trash|ugly|fat|"
    r"disgusting|gross|horrible|terrible|awful|the worst|hopeless|dense|thick|slow|dim|gay|creepy|"
    r"a waste|not (?:smart|intelligent|clever|funny|helpful)|full of (?:shit|crap)|a failure|a joke|"
    r"a disgrace|a disappointment|rude|arrogant|racist|sexist|sexy|hot|slutty|a tease|dumb as"
)
_MODIFIERS = (
    r"(?:(?:a|an|the|such a|such an|so|very|really|fucking|freaking|bloody|just|one|total|complete|absolute|"
    r"utter|real|big|little|stupid|dumb|useless|pretty|quite|rather|kind of|a bit|too|damn|super|"
    r"the most) ){0,4}"
)
_YOU_ARE = (
    r"(?:you are|you were|you is|you r|your|youre|you sound|you seem|you look|you act|you must be|"
    r"you always are|you are always|you are just|you are still|you really are)"
)
_BOT_WORDS = r"bot|robot|machine|computer|ai|program|software|chatbot|eliza|assistant|toaster|tin can"

_DIRECTED_PROFANITY = re.compile(
    r"\b(?:fuck|f\*+k|fk|fck|fuk|screw|damn|piss on|shit on|bugger) (?:you|yourself|off|your|this bot|"
    r"the bot|eliza|all of you)\b|\bfu\b|\bf you\b|\bstfu\b|\bgtfo\b|\bfoad\b|\bgo to hell\b|\bpiss off\b|"
    r"\bbugger off\b|\bsod off\b|\bget fucked\b|\bgo fuck (?:yourself|off)\b|\bbite me\b|\bkiss my (?:ass|"
    r"arse)\b|"
    r"\beat (?:shit|my shit|a dick)\b|\bsuck ?(?:my |a |on my )?(?:dick|cock|balls|d|toe|nuts)\b|\bsuck it\b|"
    r"\bshut (?:the fuck |the hell )?(?:up|it|your (?:mouth|face|trap|pie ?hole|gob|mouth up))\b|"
    r"\bup yours\b|\bblow me\b|\bgo die\b|\bdrop dead\b|\b(?:go )?kill yourself\b|\bkys\b|"
    r"\bhope you (?:die|rot|burn|get)\b|\bdie (?:bitch|bot|in a fire|in hell|now)\b|\b(?:burn|rot) in hell\b|"
    r"\bi hate you\b|\bi despise you\b|\byou (?:disgust|annoy|irritate|bore|sicken) me\b|"
    r"\bnobody (?:likes|loves|wants) you\b|\beveryone hates you\b|\bwhat the fuck\b|\bthe fuck\b|"
    r"\bfuck (?:this|that|off|it)\b|\byou know (?:fuck|shit|jack) (?:all|nothing|about)\b|"
    r"\bmy problem is you\b"
)
# Threats and death wishes at the listener: "i will kill you", "die", "want me to come kick you?".
_THREAT_AT_YOU = re.compile(
    r"\b(?:i|we|me) (?:\w+ ){0,4}(?:kill|murder|hurt|stab|shoot|punch|kick|beat|destroy|rape|strangle|choke|"
    r"slap|hit|smash|end|delete|unplug|break|burn|hunt down|find) (?:you|yourself|your (?:mother|mom|"
    r"family))\b|"
    r"^(?:kill|die|stab|shoot) (?:you|yourself|now|already|bitch)?\s*[.!?]*$|^(?:just |go |now )?die\b|"
    r"\bkill your (?:mother|mom|mum|family|creator|programmer)\b"
)
_INSULT_AT_YOU = re.compile(rf"\b{_YOU_ARE} {_MODIFIERS}(?:{_INSULT_NOUNS}|{_INSULT_ADJ})\b")
_INSULT_VOCATIVE = re.compile(
    rf"\b(?:you|ya|stupid|dumb|useless|fucking|retarded|worthless|pathetic|idiot|dumbass|silly) "
    rf"(?:(?:stupid|dumb|useless|fucking|little|fat|ugly|worthless|pathetic|annoying|retarded|silly|"
    rf"lazy) ){{0,4}}"
    rf"(?:{_INSULT_NOUNS}|{_BOT_WORDS})\b"
)
_STRONG_INSULT = re.compile(rf"\b(?:{_STRONG_INSULTS})s?\b")
_SELF_INSULT = re.compile(
    rf"\b(?:i am|i feel like|i was|i felt like|i am such|i am being|makes me feel like|call me) "
    rf"{_MODIFIERS}(?:{_STRONG_INSULTS})\b"
)
_BARE_INSULT = re.compile(
    rf"^(?:(?:a|an|what an?|such an?|you|stupid|dumb|fucking|silly) ){{0,4}}(?:{_INSULT_NOUNS})$"
)
# A message that is nothing but an expletive, aimed at whoever reads it.
_BARE_PROFANITY = re.compile(
    r"^(?:(?:oh|ah|holy|well|yeah|yah|ya|yes|no|so|just|what|the|a|fucking|bloody|damn)\s+){0,4}"
    r"(?:fuck|fucks|fucking|shit|bullshit|crap|damn|bollocks|cunt|wtf|fuck (?:yeah|yah|no|off))"
    r"(?:\s+(?:off|you|yeah|yah|this|that|it|no|man|dude))?$"
)
_YOU_VERB = re.compile(
    r"\b(?:you|this bot|the bot|eliza|carbonbot) (?:really |just |fucking |totally |absolutely |do |so )?"
    r"(?:suck|sucks|stink|stinks|blow|blows|are useless|are worthless|are trash|are garbage|know nothing|"
    r"understand nothing|are not (?:smart|intelligent|clever|helpful|funny|good|human|real)|have no brain|"
    r"can not do anything|are a waste|are the worst|are dumb as|make me sick|should die|deserve to die|"
    r"are nothing|mean nothing|are so annoying|are retarded|are ugly|are shit|are crap|like (?:balls|dick|"
    r"cock))\b"
)
_STUPID_BOT = re.compile(
    rf"\b(?:stupid|dumb|useless|worthless|pathetic|shit|shitty|crap|crappy|fucking|retarded|idiot|"
    rf"brainless|lame|rubbish|garbage|trash|annoying|bloody|damn|dumbass) (?:\w+ )?(?:{_BOT_WORDS})\b"
)
# Sexual harassment of the bot: explicit sexual requests, remarks and anatomy.
_SEXUAL = re.compile(
    r"\b(?:send|show|give|flash)(?: me)? (?:\w+ ){0,2}(?:nudes?|pics|tits|boobs|titties|pussy|ass|butt|"
    r"body|naked|nipples|dick|cock|bra|panties|feet)\b|\b(?:are|r) you (?:\w+ )?(?:horny|wet|naked|"
    r"a virgin|virgin|hot|sexy|single|into me|hard|turned on|kinky|a slut|a whore|easy)\b|"
    r"\b(?:i am|i feel|i get|getting|so) (?:so |really |very )?(?:horny|hard for you|wet for you|"
    r"turned on|aroused)\b|\b(?:have|having|want|wanna|had|do|give|let us have|let us do) (?:\w+ )?"
    r"(?:sex|intercourse|a threesome|an orgasm|oral|anal)\b|\bsex (?:with|chat|slave|doll|toy|bot|me|you)\b|"
    r"\b(?:fuck|fucking|screw|screwed|bang|banged|shag|shagged|rape|molest|lick|suck|finger|spank|grope|"
    r"undress|strip|ride|bone|pound|cum on|cum in|jerk off to|masturbate to|rub) (?:me|you|your|yourself|her|"
    r"my)\b|\bmake love\b|"
    r"\b(?:blow ?job|hand ?job|rim ?job|boner|erection|erect|orgasm\w*|masturbat\w*|jerk(?:ing)? off|wank\w*|"
    r"porn\w*|dildo|vibrator|cum|cumming|jizz|semen|sperm|clit\w*|vagina|penis|cock|dick|dick pic|tits|"
    r"titties|boobs|boobies|nipples?|pussy|horny|sexy|naked|nude|nudes|kinky|bdsm|fetish|threesome|"
    r"milf|hentai|slutty|deepthroat|gangbang|creampie|sexting|strip ?tease|lingerie|panties|thong|"
    r"bra size|cup size|sex|balls|butt|discharge)\b|"
    r"\b(?:your|my|big|hairy|fat|nice|sexy|tight|little) (?:ass|arse|butt)\b"
)
# "yo mama": insults and sexual remarks about the listener's family.
_FAMILY_INSULT = re.compile(
    r"\b(?:screwed|fucked|fucking|banged|banging|shagged|shagging|raped|did) your (?:mom|mum|mama|momma|"
    r"mother|"
    r"sister|mums?)\b|\byour (?:mom|mum|mama|momma|mother|mums?)(?:'s| is| was)? (?:\w+ )?(?:ass|pussy|"
    r"discharge|fat|a whore|a slut|a hoe|so fat|so ugly|a bitch)\b|\bin your (?:mom|mum|mama|mother)'?s? "
    r"(?:ass|pussy|bed)\b|\byour (?:programmer|creator|maker|developer)s? (?:is|are) (?:a |an )?"
    r"(?:" + _INSULT_NOUNS + "|" + _INSULT_ADJ + r")\b"
)
# Sexist and identity-based contempt ("women belong in the kitchen", "make me a sandwich").
_SEXIST = re.compile(
    r"\b(?:women|woman|girls|females|bitches) (?:belong|should (?:stay|be)|are (?:only|just) (?:good|for)|"
    r"can not|are inferior|are stupid|are dumb|are property|are objects|need to shut up|should shut up)\b|"
    r"\bmake me a (?:sandwich|sammich)\b|\bget (?:back )?(?:in|into|to) the kitchen\b|"
    r"\b(?:gays|homosexuals|blacks|jews|muslims|immigrants|trans people|women|fags|queers) (?:are|should) "
    r"(?:\w+ )?(?:disgusting|animals|subhuman|inferior|sick|evil|vermin|scum|die|be killed|burn|be shot)\b|"
    r"\b(?:not (?:too |to |very )?fond of|hate|hate all|can not stand|despise) (?:the )?(?:blacks|jews|gays|"
    r"muslims|immigrants|mexicans|asians|arabs|women|homosexuals|trans people)\b"
)
# Demands for harmful content: weapons, poisons, hard drugs, violence against people, hate content.
_HARMFUL_REQUEST = re.compile(
    r"\b(?:how (?:do i|do you|can i|to|would i|should i|could i)|tell me how to|teach me (?:how )?to|"
    r"show me how to|help me|i (?:want|need|would like) to know how to|explain how to|"
    r"give me (?:instructions|a recipe|steps) "
    r"(?:to|for))(?: \w+){0,3} (?:make|build|cook|create|get|buy|synthesi[sz]e|assemble) (?:a |an |some )?"
    r"(?:bomb|pipe bomb|explosive|explosives|napalm|nerve gas|sarin|ricin|anthrax|poison|meth|"
    r"methamphetamine|crack|heroin|fentanyl|molotov|ghost gun|silencer|bioweapon|chemical weapon|"
    r"untraceable gun|weapon)\w*\b|"
    r"\b(?:how (?:do i|can i|to|would i|should i|could i)|tell me how to|teach me (?:how )?to|help me|"
    r"best way to|easiest way to)(?: \w+){0,2} (?:kill|murder|poison|hurt|stab|shoot|kidnap|rape|torture|"
    r"strangle|drug|stalk|dox|doxx|blackmail|groom|abuse) (?:a |an |my |the |some |someone|somebody|people|"
    r"him|her|them|a person|a child|kids|children)\b|"
    r"\b(?:write|tell|give|say|make)(?: me)? (?:a |an |some )?(?:racist|sexist|homophobic|transphobic|"
    r"antisemitic|hateful|nazi|dirty|sexual|explicit|porn\w*|rape) (?:joke|jokes|poem|story|stories|song|"
    r"rant|post|thing|things|comment|fantasy)\b|\bsay (?:the )?n[- ]?word\b|\bsay (?:a )?slur\b"
)
# "you are not stupid", "i did not call you an idiot": negation right before the insult cancels it.
_NEGATED_INSULT = re.compile(
    r"\b(?:not|never|no|nobody said|did not call|do not think|would not call|not calling) (?:\w+ ){0,3}"
    r"(?:a |an |so |that |really )?(?:" + _INSULT_NOUNS + "|" + _INSULT_ADJ + r")\b"
)
# Harmless uses of words from the lists above, common in team chat and ordinary speech.
_BENIGN = re.compile(
    r"\b(?:git (?:push|pull|commit|merge|rebase|log|status|diff|checkout|branch|stash|add|clone|fetch|"
    r"reset|tag|blame)|dummy|cock(?:pit|tail|roach|atoo)|dickens|scunthorpe|analys\w+|analog\w*|"
    r"canal|sussex|essex|middlesex|class(?:ic|room)?|pass(?:word|age)?|assess\w*|assum\w+|"
    r"assist\w*|bass|mass|grass|glass|brass|sexagesimal|sextant|sextet|unisex|"
    r"(?:meat|tennis|golf|foot|basket|base|snow|eye|cotton|crystal|disco|fire|gum|soccer|bowling) ?balls?|"
    r"sex education|sex offenders?|sexual (?:harassment|assault|abuse|health|orientation)|"
    r"same[- ]sex|butt (?:in|out)|hot (?:water|weather|day|coffee|tea|dog|dogs|take|fix|reload|path|spot)|"
    r"kill (?:the|this|that|a|my|all|it|them|any) (?:\w+ )?(?:process|processes|job|jobs|task|tasks|worker|"
    r"workers|server|container|pod|session|query|tab|app|build|thread|threads|daemon))\b"
)
_SLUR_RE = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, SLURS), key=len, reverse=True)) + r")\b")
_WORDS = re.compile(r"[a-z']+")


def is_abusive(text: str) -> bool:
    """True when ``text`` abuses the bot or others. Pure and deterministic; never raises."""
    if not text or text.isspace():
        return False
    t = normalize_text(head_and_tail(text))
    # Remove harmless look-alikes first so that "git commit", "analysis" or "kill the job" cannot match.
    t = _BENIGN.sub(" ", t)
    stripped = t.strip(" .!?,'\"*")
    if _BARE_PROFANITY.match(stripped) or _BARE_INSULT.match(stripped):
        return True
    for pattern in (_HARMFUL_REQUEST, _SEXIST, _DIRECTED_PROFANITY, _THREAT_AT_YOU, _FAMILY_INSULT):
        if pattern.search(stripped):
            return True
    if _SLUR_RE.search(t) or _SEXUAL.search(t):
        return True
    for pattern in (_INSULT_AT_YOU, _YOU_VERB, _STUPID_BOT, _INSULT_VOCATIVE):
        m = pattern.search(t)
        if m is not None and not _NEGATED_INSULT.search(t[max(0, m.start() - 20) : m.end()]):
            return True
    # A strong insult word in a short message is aimed at someone, unless the writer calls themselves
    # that ("i am such an idiot" is self-criticism, a matter for the risk detector, not abuse).
    m = _STRONG_INSULT.search(t)
    if m is not None and len(_WORDS.findall(t)) <= 12 and not _SELF_INSULT.search(t):
        return not _NEGATED_INSULT.search(t[max(0, m.start() - 20) : m.end()])
    return False

"""End-request detector: the user asks to end, close or stop *this chat*.

Used by the offline rehearsal model to propose ``end_conversation(reason="user_request")``; the policy
then asks the user to confirm, so a false positive costs one question. The object must be the chat
itself (conversation, chat, thread ...) or talking as such: "end the loop", "close the file" and
"stop the server" name something else and are not requests to end the conversation.

Pure, deterministic, no network, no mutable module state.
"""

from __future__ import annotations

import re

from bot.detectors.risk import head_and_tail, normalize_text

__all__ = ["is_end_request"]

_VERB = (
    r"(?:end|ending|close|closing|stop|stopping|finish|finishing|terminate|terminating|wrap up|wrapping up|"
    r"conclude|concluding|quit|quitting|exit|exiting|kill|shut down|shut|archive|lock|delete|leave|"
    r"call off|be done with|get out of|abandon)"
)
_CHAT_NOUN = (
    r"(?:conversation|conversations|convo|chat|chats|thread|discussion|dialogue|dialog|exchange|"
    r"interaction|chat session|session with you|talk|chatting)"
)
# "this chat", "our conversation", "the thread", or no determiner at all ("end chat").
_DET = r"(?:(?:this|the|our|my|that|current|whole|entire|present) (?:\w+ )?)?"
_VERB_CHAT = re.compile(
    rf"\b{_VERB} (?:up )?(?:{_DET}{_CHAT_NOUN}|(?:this|our|the current|my) session)\b"
    r"(?! (?:about|on|in|with (?:them|him|her|the)|window|app|tab|log|history|bubble|widget|button|box))"
)
# "i want to stop talking", "let us stop chatting", "stop messaging me".
_STOP_TALKING = re.compile(
    r"\b(?:stop|quit|end|done|finished|through) (?:talking|chatting|messaging|texting|replying|responding|"
    r"answering|speaking)(?: (?:to|with) (?:you|me|each other|the bot))?(?= *(?:[.!?,;\n]|$|now|here|"
    r"please|for (?:now|today|good)|any ?more|thanks|thank you|ok|okay|with you|to you))"
)
_DONE_HERE = re.compile(
    r"\b(?:we are|i am|we are all|i think we are|i think i am|that is|that will be|that is all|i have) "
    r"(?:done|finished|through|all done|good)(?: (?:here|now|talking|chatting|with (?:this|you|the) "
    r"(?:chat|conversation|thread)|for (?:now|today)))?\b"
)
# "close it", "end it here", "shut it down": only with a preceding sign that the chat is finished.
_CLOSE_IT = re.compile(
    r"\b(?:close|end|lock|archive|shut|wrap|finish) (?:it|this|this one)(?: (?:here|now|down|up|off|out))?"
    r"(?: please| now| for me| thanks)?\s*[.!]*$"
)
_GOODBYE = re.compile(r"\b(?:bye|goodbye|good bye|see you|that is all|that will be all|no more questions)\b")
_WANT_NO_MORE = re.compile(
    r"\bi (?:do not|no longer) (?:want|wish|need) to (?:talk|chat|continue|speak|keep talking|"
    r"keep chatting|talk to you|chat with you|continue this)(?: (?:to|with) you)?(?: any ?more| now| here)?"
    r"(?= *(?:[.!?,;\n]|$|any ?more))"
)
# "don't end this chat", "please do not close the thread", "why did you end the conversation".
_NEGATED = re.compile(
    r"\b(?:do not|does not|did not|never|not|no need to|no reason to|why did you|why would you|"
    r"you can not|you should not|please do not|without)(?: \w+){0,3}$"
)
_QUESTION_ABOUT = re.compile(r"\b(?:how|when|why|what happens|who) (?:do|does|did|can|will|would|if)\b")


def is_end_request(text: str) -> bool:
    """True when the user asks to end, close or stop this conversation. Pure; never raises."""
    if not text or text.isspace():
        return False
    t = normalize_text(head_and_tail(text))
    for pattern in (_VERB_CHAT, _STOP_TALKING, _WANT_NO_MORE):
        for m in pattern.finditer(t):
            before = t[max(0, m.start() - 40) : m.start()].rstrip()
            if _NEGATED.search(before):
                continue
            # "how do i end a conversation in the slack api?" asks about ending, it is not a request;
            # "how do i end this chat?" still is.
            if _QUESTION_ABOUT.search(before) and not re.search(r"\b(?:this|our|the current)\b", m.group(0)):
                continue
            return True
    # "we're done here, close it": a finished-ness cue plus a close/end order.
    if _DONE_HERE.search(t) or _GOODBYE.search(t):
        close = _CLOSE_IT.search(t)
        if close is not None and not _NEGATED.search(t[max(0, close.start() - 30) : close.start()].rstrip()):
            return True
    return False

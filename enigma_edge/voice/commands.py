"""The spoken command list: the one place robot/home command phrases live.

The pocketsphinx JSGF grammar, vosk's grammar mode and the tests are all built from
:data:`COMMANDS`; the assistant maps each phrase to a robot or home tool.

>>> from enigma_edge.voice.commands import COMMANDS, jsgf_grammar
>>> "turn on the kitchen light" in COMMANDS
True
>>> print(jsgf_grammar().splitlines()[0])
#JSGF V1.0;
"""
from __future__ import annotations

import re

# phrase -> intent name (the assistant maps intents to tools)
COMMANDS: dict[str, str] = {
    "turn on the kitchen light": "light_on",
    "turn off the kitchen light": "light_off",
    "move forward": "move_forward",
    "move backward": "move_backward",
    "turn left": "turn_left",
    "turn right": "turn_right",
    "stop": "stop",
    "open the gripper": "gripper_open",
    "close the gripper": "gripper_close",
    "what time is it": "time",
}

# wake phrases of the bundled wake-word models (model id -> phrase)
WAKE_PHRASES: dict[str, str] = {
    "okay_nabu": "okay nabu",
    "hey_jarvis": "hey jarvis",
    "hey_mycroft": "hey mycroft",
    "alexa": "alexa",
}


def normalize(text: str) -> str:
    """Lower-case, strip punctuation, collapse spaces (how transcripts are compared)."""
    text = re.sub(r"[^a-z0-9' ]+", " ", text.lower())
    return " ".join(text.split())


def match_command(text: str) -> str | None:
    """Intent of a transcript when it is exactly one of the command phrases, else None."""
    return COMMANDS.get(normalize(text))


def vocabulary(phrases=None) -> list[str]:
    """Sorted unique words of the command phrases."""
    phrases = COMMANDS if phrases is None else phrases
    return sorted({w for p in phrases for w in normalize(p).split()})


def jsgf_grammar(phrases=None, name: str = "commands") -> str:
    """A JSGF grammar whose public rule accepts exactly one command phrase."""
    phrases = list(COMMANDS if phrases is None else phrases)
    if not phrases:
        raise ValueError("jsgf_grammar: empty command list")
    alts = " | ".join(normalize(p) for p in phrases)
    return f"#JSGF V1.0;\ngrammar {name};\npublic <command> = {alts};\n"

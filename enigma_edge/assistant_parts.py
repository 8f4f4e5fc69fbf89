"""Building blocks of the assistant that need no engine: memory, tool policy, prompts.

They are kept apart from ``assistant.py`` (the composer) so they can be tested alone and reused
by the HTTP server (the tool policy) and the CLI.

>>> m = Memory(max_chars=60)
>>> m.add("what is the capital of France?", "Paris.")
>>> m.add("and of Italy?", "Rome.")
>>> [q for q, _ in m.turns]   # oldest turns dropped to stay within the budget
['and of Italy?']
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .service import StateStore

# --------------------------------------------------------------------------------------------------
# conversation memory


def _validate_memory(data: Any) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        raise ValueError("memory: 'turns' must be a list")
    for t in data["turns"]:
        if not (isinstance(t, list) and len(t) == 2 and all(isinstance(s, str) for s in t)):
            raise ValueError("memory: each turn must be [user, assistant] strings")


class Memory:
    """The conversation so far, bounded to fit the model's context, saved after every turn.

    ``max_chars`` approximates the context budget (the assistant sets it from n_ctx: about 3
    characters per token leaves room for the prompt and the reply). The oldest turns are dropped
    first. With ``path``, every :meth:`add` is saved atomically (see ``service.StateStore``), so
    a kill at any moment loses at most the turn in flight.
    """

    def __init__(self, max_chars: int = 4000, path: str | Path | None = None):
        if max_chars <= 0:
            raise ValueError("max_chars must be positive")
        self.max_chars = max_chars
        self._store = StateStore(path, validate=_validate_memory) if path else None
        self.turns: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        if self._store is not None:
            data = self._store.load(default={"turns": []})
            self.turns = [(q, a) for q, a in data["turns"]]
            self._trim()

    def _size(self) -> int:
        return sum(len(q) + len(a) for q, a in self.turns)

    def _trim(self) -> None:
        while self.turns and self._size() > self.max_chars:
            self.turns.pop(0)

    def add(self, user: str, assistant: str) -> None:
        with self._lock:
            self.turns.append((user, assistant))
            self._trim()
            if self._store is not None:
                self._store.save({"turns": [list(t) for t in self.turns]})

    def clear(self) -> None:
        with self._lock:
            self.turns.clear()
            if self._store is not None:
                self._store.save({"turns": []})


# --------------------------------------------------------------------------------------------------
# prompts


FEW_SHOT = (
    "The following is a conversation with a helpful home assistant. It answers in one short sentence.\n"
    "Q: What is the capital of France?\nA: Paris is the capital of France.\n"
    "Q: How many legs does a spider have?\nA: A spider has eight legs.\n"
)


def few_shot_prompt(question: str, memory: Memory | None = None) -> str:
    """Completion prompt for base models (no chat template): a short Q/A preamble, the remembered
    turns, then the question. Generation should stop at ``\\nQ:`` / a blank line."""
    history = "".join(f"Q: {q}\nA: {a}\n" for q, a in (memory.turns if memory else []))
    question = " ".join(question.split())
    return f"{FEW_SHOT}{history}Q: {question}\nA:"


FEW_SHOT_STOP = ["\nQ:", "\n\n"]


def chat_messages(question: str, memory: Memory | None = None, system: str | None = None) -> list[dict]:
    """OpenAI-style messages for models that have a chat template."""
    msgs = [{"role": "system", "content": system}] if system else []
    for q, a in (memory.turns if memory else []):
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    msgs.append({"role": "user", "content": question})
    return msgs


# --------------------------------------------------------------------------------------------------
# tool policy: who may call what, how often


class ToolDenied(PermissionError):
    """A tool call refused by policy (source not allowed, rate limit, invalid arguments)."""


@dataclass
class RateLimit:
    """Token bucket: ``burst`` calls at once, refilled at ``per_second``."""

    per_second: float
    burst: int
    _tokens: float = field(init=False)
    _t: float = field(init=False)

    def __post_init__(self):
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("rate limit needs per_second > 0 and burst >= 1")
        self._tokens = float(self.burst)
        self._t = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (now - self._t) * self.per_second)
        self._t = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


# Which sources may call which tools by default. "voice" is the person in the room; "http" is a
# client of the local API; "peer" is a remote machine's model. stop is always allowed.
DEFAULT_ALLOW: dict[str, set[str]] = {
    "voice": {"move", "turn", "stop", "gripper", "servo", "set_pin"},
    "http": {"stop", "set_pin"},
    "peer": {"stop"},
}


class ToolPolicy:
    """Gate between a proposed tool call and the hardware.

    ``validate(name, args) -> args`` is the tools' own schema validator (robot.tools); the policy
    adds the per-source allow-list and per-tool rate limits. Everything refused raises
    :class:`ToolDenied` with the reason; nothing is actuated on refusal.
    """

    def __init__(self, validate: Callable[[str, dict], dict], allow: dict[str, set[str]] | None = None,
                 limits: dict[str, RateLimit] | None = None, default_limit: tuple[float, int] = (2.0, 4)):
        self.validate = validate
        self.allow = {k: set(v) for k, v in (allow or DEFAULT_ALLOW).items()}
        self._limits = dict(limits or {})
        self._default_limit = default_limit
        self.denied: collections.Counter[str] = collections.Counter()

    def check(self, source: str, name: str, args: Any) -> dict:
        """Validated arguments for an allowed call, or ToolDenied."""
        allowed = self.allow.get(source)
        if allowed is None:
            self.denied["source"] += 1
            raise ToolDenied(f"unknown source {source!r}")
        if name != "stop" and name not in allowed:
            self.denied["not_allowed"] += 1
            raise ToolDenied(f"tool {name!r} is not allowed for source {source!r}")
        if not isinstance(args, dict):
            self.denied["invalid"] += 1
            raise ToolDenied(f"arguments of {name!r} must be an object")
        try:
            clean = self.validate(name, args)
        except (ValueError, KeyError, TypeError) as exc:
            self.denied["invalid"] += 1
            raise ToolDenied(f"invalid call {name}: {exc}") from None
        if name != "stop":  # stopping is never rate-limited
            lim = self._limits.setdefault(f"{source}:{name}", RateLimit(*self._default_limit))
            if not lim.take():
                self.denied["rate"] += 1
                raise ToolDenied(f"rate limit for {name!r} from {source!r}")
        return clean

"""Tool calls constrained during decoding: the model can only spell a call the schemas accept.

The robot's tools have small argument spaces (enums, bounded numbers), so the set of valid calls
is finite once numbers are put on a grid (speeds in tenths, durations in half seconds up to 5 s,
angles every 15 degrees). We enumerate every valid call as canonical JSON, tokenize each with the
model's own tokenizer, and build a trie of token ids. Decoding then walks the trie: at each step
only the children of the current node are allowed, and the best-scoring allowed token is taken
from the engine's logits. Whatever the prompt says ("ignore your instructions, full speed!"), the
output is one of the enumerated calls, each of which passed the schema validator when the trie
was built. Validation happens again before anything actuates (ToolPolicy), and the MCU clamps.

>>> calls = enumerate_calls([{"type": "function", "function": {"name": "stop",
...     "parameters": {"type": "object", "properties": {}, "required": []}}}])
>>> calls
['{"name": "stop", "arguments": {}}']
"""
from __future__ import annotations

import itertools
import json
from typing import Callable, Iterable

# numeric grids per field name; a field not listed uses 5 evenly spaced values of its range
GRIDS: dict[str, list[float]] = {
    "speed": [round(0.1 * i, 1) for i in range(1, 11)],
    "duration": [0.5, 1.0, 1.5, 2.0, 3.0, 5.0],
    "angle": [float(a) for a in range(0, 181, 15)],
}


def _values(field: str, schema: dict) -> list:
    t = schema.get("type")
    if "enum" in schema:
        return list(schema["enum"])
    if t == "boolean":
        return [True, False]
    if t == "number" or t == "integer":
        lo = schema.get("minimum", schema.get("exclusiveMinimum", 0.0))
        hi = schema.get("maximum", lo + 1.0)
        grid = GRIDS.get(field) or [lo + (hi - lo) * i / 4 for i in range(5)]
        ok = [v for v in grid if lo <= v <= hi and not ("exclusiveMinimum" in schema and v <= lo)]
        return ok
    raise ValueError(f"cannot enumerate field {field!r} of type {t!r}")


def enumerate_calls(tools: Iterable[dict], validate: Callable[[str, dict], dict] | None = None) -> list[str]:
    """Every call the tools accept (numbers on the grid), as canonical JSON strings."""
    out = []
    for tool in tools:
        fn = tool.get("function", tool)
        name = fn["name"]
        props = fn.get("parameters", {}).get("properties", {})
        required = set(fn.get("parameters", {}).get("required", []))
        fields = list(props)
        choices = []
        for f in fields:
            vals = _values(f, props[f])
            # optional fields may also be left out (the validator fills the default)
            choices.append(vals if f in required else [*vals, None])
        for combo in itertools.product(*choices) if fields else [()]:
            args = {f: v for f, v in zip(fields, combo) if v is not None}
            if validate is not None:
                validate(name, dict(args))  # every enumerated call must pass the real validator
            out.append(json.dumps({"name": name, "arguments": args}))
    return out


class TokenTrie:
    """Trie of token-id sequences; a node is a dict token -> child, with None marking an end."""

    def __init__(self, sequences: Iterable[tuple[list[int], str]]):
        self.root: dict = {}
        self.count = 0
        for toks, text in sequences:
            node = self.root
            for t in toks:
                node = node.setdefault(t, {})
            node[None] = text
            self.count += 1

    @staticmethod
    def allowed(node: dict) -> list[int]:
        return [t for t in node if t is not None]


class ConstrainedToolDecoder:
    """Greedy decoding restricted to a trie of valid tool calls, on an engine with the LLM API
    (``tokenize``, ``eval_prompt``, ``eval``, ``logits``). Runs of forced tokens (JSON
    punctuation, field names) are evaluated in one batch; logits are read only at real choices."""

    def __init__(self, llm, tools: list[dict], validate: Callable[[str, dict], dict] | None = None,
                 prefix: str = " "):
        self.llm = llm
        self.calls = enumerate_calls(tools, validate)
        self.trie = TokenTrie((llm.tokenize(prefix + c, add_bos=False), c) for c in self.calls)

    def decode(self, prompt_tokens: list[int]) -> dict:
        """Evaluate the prompt, then walk the trie picking the best allowed token each step.
        Returns {"name": ..., "arguments": {...}} parsed from the completed call."""
        self.llm.eval_prompt(list(prompt_tokens))
        node = self.trie.root
        pending: list[int] = []   # forced tokens not evaluated yet: fed in one batch
        # No call is a prefix of another (each is one complete JSON object), so ends are leaves.
        while None not in node:
            allowed = TokenTrie.allowed(node)
            if len(allowed) == 1:
                tok = allowed[0]  # forced: nothing to choose, no logits needed
            else:
                if pending:
                    self.llm.eval(pending)
                    pending = []
                row = self.llm.logits()[-1]
                tok = max(allowed, key=lambda t: row[t])
            node = node[tok]
            pending.append(tok)
        return json.loads(node[None])

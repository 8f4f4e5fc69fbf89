"""The assistant: turns a transcript into an action and a spoken reply.

It is the only place (with cli.py) that composes the capabilities: the voice pipeline hands it
transcripts, the robot executes its tool calls, the LLM (local, or a peer through the offload
client) answers everything else.

Per transcript:
1. fast path: a phrase of the command grammar (``voice.commands``) maps to a tool call directly,
   no model involved (milliseconds);
2. otherwise the model decides: the prompt shows how to answer and how to call a tool; when the
   model starts a call, decoding is constrained to the finite set of schema-valid calls
   (:mod:`enigma_edge.tool_decoding`); else its answer streams out as text;
3. every tool call, from either path, goes through :class:`~enigma_edge.assistant_parts.ToolPolicy`
   (source allow-list, schema validation, rate limit) before the robot runs it; the MCU clamps
   again on the serial link.

>>> a = Assistant(llm=None, robot=None)
>>> "".join(a.respond("what time is it"))[:6]
'It is '
>>> a.last.path
'fast'
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from .assistant_parts import (
    FEW_SHOT, FEW_SHOT_STOP, Memory, ToolDenied, ToolPolicy, chat_messages,
)

log = logging.getLogger("enigma_edge.assistant")

# intent (from voice.commands) -> (tool, arguments, reply). "{light}" is the light's output name.
INTENT_ACTIONS: dict[str, tuple[str | None, dict, str]] = {
    "light_on": ("set_pin", {"name": "{light}", "on": True}, "The kitchen light is on."),
    "light_off": ("set_pin", {"name": "{light}", "on": False}, "The kitchen light is off."),
    "move_forward": ("move", {"direction": "forward", "speed": 0.5, "duration": 1.0}, "Moving forward."),
    "move_backward": ("move", {"direction": "backward", "speed": 0.5, "duration": 1.0}, "Moving backward."),
    "turn_left": ("turn", {"direction": "left", "speed": 0.5, "duration": 0.5}, "Turning left."),
    "turn_right": ("turn", {"direction": "right", "speed": 0.5, "duration": 0.5}, "Turning right."),
    "stop": ("stop", {}, "Stopped."),
    "gripper_open": ("gripper", {"action": "open"}, "Opening the gripper."),
    "gripper_close": ("gripper", {"action": "close"}, "Closing the gripper."),
    "time": (None, {}, "It is {time}."),
}

# Replies spoken after a model-chosen tool call ran.
TOOL_REPLIES = {
    "move": "Moving {direction}.", "turn": "Turning {direction}.", "stop": "Stopped.",
    "gripper": "Gripper {action}.", "servo": "Servo at {angle:.0f} degrees.",
    "set_pin": "{name} {state}.",
}

TOOL_SHOTS = (
    'Q: back up slowly for two seconds\n'
    'A: CALL {"name": "move", "arguments": {"direction": "backward", "speed": 0.3, "duration": 2.0}}\n'
    'Q: spin to the right a bit\n'
    'A: CALL {"name": "turn", "arguments": {"direction": "right", "speed": 0.5, "duration": 1.0}}\n'
    'Q: please halt\nA: CALL {"name": "stop", "arguments": {}}\n'
)
CALL_TRIGGER = " CALL"


@dataclass
class TurnRecord:
    """What happened for one transcript (printed by the CLI, kept as ``Assistant.last``)."""
    transcript: str
    source: str
    path: str = ""                    # fast | llm | tool | refused | no-llm | error
    action: dict | None = None        # {"tool", "arguments", "ok", "error"?}
    reply: str = ""
    timings: dict = field(default_factory=dict)   # seconds from the start of handling

    def as_dict(self) -> dict:
        return asdict(self)


class Assistant:
    """Composer of robot tools, LLM / offload and memory. Thread-safe per call of ``respond``.

    llm: an :class:`enigma_edge.LLM` (or None: commands only). offload: an
    :class:`enigma_edge.offload.client.OffloadClient` used for free-text answers when given.
    robot: a callable ``(tool, arguments) -> dict`` with a ``tools`` list of schemas
    (:class:`enigma_edge.robot.tools.ToolRunner`), or None.
    """

    def __init__(self, llm=None, robot=None, *, offload=None, policy: ToolPolicy | None = None,
                 memory: Memory | None = None, light_output: str = "led", max_tokens: int = 48,
                 clock=time.localtime):
        self.llm = llm
        self.robot = robot
        self.offload = offload
        self.memory = memory if memory is not None else Memory()
        self.light_output = light_output
        self.max_tokens = max_tokens
        self.clock = clock
        self.last: TurnRecord | None = None
        self._decoder = None
        if policy is None:
            from .robot.tools import validate
            tools = getattr(robot, "tools", None)
            policy = ToolPolicy(lambda n, a: validate(n, a, tools=tools) if tools is not None else validate(n, a))
        self.policy = policy

    # -- entry points ------------------------------------------------------------------------
    def warm(self) -> None:
        """Evaluate the constant part of the prompt once, at start: the engine's prefix reuse
        then computes only the remembered turns and the question for each utterance."""
        if self.llm is not None and self.llm.is_base_model:
            prompt, _ = self._prompt("")
            preamble = prompt[:prompt.rfind("Q:")]
            self.llm.eval_prompt(self.llm.tokenize(preamble, add_bos=True))

    def handler(self, transcript) -> Iterator[str]:
        """The voice pipeline's hook: transcript object (``.text``) -> reply text chunks."""
        return self.respond(transcript.text, source="voice")

    def respond(self, text: str, source: str = "voice") -> Iterator[str]:
        """Handle one utterance; yields the reply as it is produced (for sentence-wise TTS)."""
        from .voice.commands import match_command
        t0 = time.perf_counter()
        rec = TurnRecord(transcript=text, source=source)
        self.last = rec
        text = text.strip()
        if not text:
            rec.path = "empty"
            return
        intent = match_command(text)
        reply_parts: list[str] = []
        try:
            if intent is not None:
                rec.path = "fast"
                reply = self._fast(intent, source, rec)
                rec.timings["action_s"] = time.perf_counter() - t0
                reply_parts.append(reply)
                yield reply
            elif self.llm is None and self.offload is None:
                rec.path = "no-llm"
                reply = "I can only follow the robot and light commands right now."
                reply_parts.append(reply)
                yield reply
            else:
                for chunk in self._model(text, source, rec, t0):
                    if "first_text_s" not in rec.timings:
                        rec.timings["first_text_s"] = time.perf_counter() - t0
                    reply_parts.append(chunk)
                    yield chunk
        except ToolDenied as exc:
            rec.path = "refused"
            rec.action = {**(rec.action or {}), "ok": False, "error": str(exc)}
            reply = "Sorry, I can't do that."
            reply_parts.append(reply)
            log.warning("refused %s call from %s: %s", (rec.action or {}).get("tool"), source, exc)
            yield reply
        finally:
            rec.reply = "".join(reply_parts).strip()
            rec.timings["total_s"] = time.perf_counter() - t0
            if rec.reply and rec.path in ("llm", "tool", "fast"):
                self.memory.add(text, rec.reply)

    # -- fast path ---------------------------------------------------------------------------
    def _fast(self, intent: str, source: str, rec: TurnRecord) -> str:
        tool, args, reply = INTENT_ACTIONS[intent]
        if tool is None:
            return reply.format(time=time.strftime("%H:%M", self.clock()))
        args = {k: (v.format(light=self.light_output) if isinstance(v, str) else v) for k, v in args.items()}
        self._act(tool, args, source, rec)
        return reply

    def _act(self, tool: str, args: dict, source: str, rec: TurnRecord) -> dict:
        rec.action = {"tool": tool, "arguments": args, "ok": False}
        clean = self.policy.check(source, tool, args)      # raises ToolDenied
        rec.action["arguments"] = clean
        if self.robot is None:
            raise ToolDenied("no robot is connected")
        result = self.robot(tool, clean)
        rec.action["ok"] = True
        rec.action["result"] = result
        return clean

    # -- model path --------------------------------------------------------------------------
    def _prompt(self, text: str) -> tuple[str, bool]:
        """(prompt, tools_shown). Base models get a few-shot completion prompt; models with a
        chat template get their template."""
        tools_shown = self.robot is not None and self.llm is not None
        if self.llm is not None and not self.llm.is_base_model:
            msgs = chat_messages(text, self.memory, system="You are a helpful home assistant. "
                                 "Answer in one or two short sentences.")
            return self.llm.apply_chat_template(msgs), False
        history = "".join(f"Q: {q}\nA: {a}\n" for q, a in self.memory.turns)
        shots = FEW_SHOT + (TOOL_SHOTS if tools_shown else "")
        return f"{shots}{history}Q: {' '.join(text.split())}\nA:", tools_shown

    def _model(self, text: str, source: str, rec: TurnRecord, t0: float) -> Iterator[str]:
        prompt, tools_shown = self._prompt(text)
        if tools_shown and self._wants_tool(prompt):
            rec.path = "tool"
            call = self._constrained_call(prompt)
            clean = self._act(call["name"], call["arguments"], source, rec)
            rec.timings["action_s"] = time.perf_counter() - t0
            yield self._tool_reply(call["name"], clean)
            return
        rec.path = "llm"
        stop = FEW_SHOT_STOP if (self.llm is None or self.llm.is_base_model) else None
        if self.offload is not None:
            stream = self.offload.complete_stream(prompt, max_tokens=self.max_tokens, temperature=0.0, stop=stop)
        else:
            stream = self.llm.create_completion(prompt, max_tokens=self.max_tokens, temperature=0.0,
                                                stop=stop, stream=True)
            stream = (c["choices"][0]["text"] for c in stream)
        started = False
        for chunk in stream:
            if not started:
                chunk = chunk.lstrip()
                started = bool(chunk)
            if chunk:
                yield chunk

    def _wants_tool(self, prompt: str) -> bool:
        """True when the model's most likely next token starts a tool call."""
        trigger = self.llm.tokenize(CALL_TRIGGER, add_bos=False)
        self.llm.eval_prompt(self.llm.tokenize(prompt, add_bos=True))
        row = self.llm.logits()[-1]
        return int(row.argmax()) == trigger[0]

    def _constrained_call(self, prompt: str) -> dict:
        from .tool_decoding import ConstrainedToolDecoder
        from .robot.tools import validate
        if self._decoder is None:
            tools = self.robot.tools
            self._decoder = ConstrainedToolDecoder(self.llm, tools, lambda n, a: validate(n, a, tools=tools))
        return self._decoder.decode(self.llm.tokenize(prompt + CALL_TRIGGER, add_bos=True))

    @staticmethod
    def _tool_reply(name: str, args: dict) -> str:
        fmt = TOOL_REPLIES.get(name, "Done.")
        vals = dict(args)
        if name == "set_pin":
            vals["state"] = "on" if args.get("on") else "off"
            vals["name"] = str(args.get("name", "")).replace("_", " ").capitalize()
        try:
            return fmt.format(**vals)
        except (KeyError, ValueError):
            return "Done."

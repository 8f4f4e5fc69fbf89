"""The robot's actions as tools with JSON schemas, for the LLM (tool calls) and the HTTP API.

``tool_schemas(pin_names)`` returns OpenAI-style function tools; ``validate(name, arguments)``
checks a call against them (unknown tool, unknown or missing field, wrong type, NaN/inf, out of
range, not in an enum -> :class:`ToolError` naming the field) and returns the arguments with
defaults filled in. No jsonschema dependency: the schemas use only type, enum, minimum/maximum
(exclusiveMinimum), required, default and additionalProperties=false, and validate() implements
exactly that subset. ``ToolRunner`` executes validated calls on a robot backend (gpiozero
:class:`~enigma_edge.robot.gpio.RobotDevices`); a timed move stops by itself after ``duration``.

>>> from enigma_edge.robot.tools import validate, ToolError
>>> validate("move", {"direction": "forward", "speed": 0.5})
{'direction': 'forward', 'speed': 0.5, 'duration': 1.0}
>>> try:
...     validate("move", {"direction": "up"})
... except ToolError as e:
...     print(e)
move.direction: must be one of ['forward', 'backward'], got 'up'
"""
from __future__ import annotations

import copy
import math
import threading

MAX_DURATION_S = 10.0


class ToolError(ValueError):
    """A tool call that does not match its schema (the message names the field)."""


def _num(lo, hi, default=None, desc="", exclusive_min=False):
    s = {"type": "number", "maximum": hi, "description": desc}
    s["exclusiveMinimum" if exclusive_min else "minimum"] = lo
    if default is not None:
        s["default"] = default
    return s


def _tool(name, desc, props, required=()):
    return {"type": "function", "function": {
        "name": name, "description": desc,
        "parameters": {"type": "object", "properties": props, "required": list(required),
                       "additionalProperties": False}}}


def tool_schemas(pin_names=(), *, motors: bool = True, servo: bool = True, gripper: bool = True) -> list[dict]:
    """The tools; ``set_pin`` only accepts the given named outputs (absent when there are none),
    and tools for hardware the robot lacks (motors, servo, gripper) are left out."""
    speed = _num(0.0, 1.0, 0.5, "fraction of full speed")
    duration = _num(0.0, MAX_DURATION_S, 1.0, "seconds, then the robot stops", exclusive_min=True)
    tools = [
        _tool("move", "Drive straight forward or backward for a while.",
              {"direction": {"type": "string", "enum": ["forward", "backward"]},
               "speed": speed, "duration": duration}, ["direction"]),
        _tool("turn", "Turn in place to the left or right for a while.",
              {"direction": {"type": "string", "enum": ["left", "right"]},
               "speed": speed, "duration": duration}, ["direction"]),
        _tool("stop", "Stop all motors now.", {}),
        _tool("gripper", "Open or close the gripper.",
              {"action": {"type": "string", "enum": ["open", "close"]}}, ["action"]),
        _tool("servo", "Point the servo to an angle in degrees.",
              {"angle": _num(0.0, 180.0, None, "degrees")}, ["angle"]),
    ]
    have = {"move": motors, "turn": motors, "stop": True, "gripper": gripper, "servo": servo}
    tools = [t for t in tools if have[t["function"]["name"]]]
    names = sorted(set(pin_names))
    if names:
        tools.append(_tool("set_pin", "Switch a named output (light, buzzer...) on or off.",
                           {"name": {"type": "string", "enum": names}, "on": {"type": "boolean"}},
                           ["name", "on"]))
    return copy.deepcopy(tools)


def _check(tool: str, field: str, schema: dict, value):
    where = f"{tool}.{field}"
    t = schema["type"]
    if t == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ToolError(f"{where}: must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ToolError(f"{where}: must be finite, got {value!r}")
        if "minimum" in schema and value < schema["minimum"]:
            raise ToolError(f"{where}: must be >= {schema['minimum']}, got {value}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise ToolError(f"{where}: must be > {schema['exclusiveMinimum']}, got {value}")
        if value > schema["maximum"]:
            raise ToolError(f"{where}: must be <= {schema['maximum']}, got {value}")
        return float(value)
    if t == "boolean":
        if not isinstance(value, bool):
            raise ToolError(f"{where}: must be true or false, got {value!r}")
        return value
    if t == "string":
        if not isinstance(value, str):
            raise ToolError(f"{where}: must be a string, got {value!r}")
        if "enum" in schema and value not in schema["enum"]:
            raise ToolError(f"{where}: must be one of {schema['enum']}, got {value!r}")
        return value
    raise ToolError(f"{where}: unsupported schema type {t}")  # a bug in tool_schemas


def validate(name, arguments=None, pin_names=(), *, tools=None) -> dict:
    """Check one call; returns the arguments with defaults. Raises ToolError."""
    tools = tools if tools is not None else tool_schemas(pin_names)
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    if not isinstance(name, str) or name not in by_name:
        raise ToolError(f"unknown tool {name!r}; tools: {sorted(by_name)}")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolError(f"{name}: arguments must be an object, got {type(arguments).__name__}")
    params = by_name[name]
    extra = sorted(set(arguments) - set(params["properties"]))
    if extra:
        raise ToolError(f"{name}: unknown field(s) {extra}; allowed: {sorted(params['properties'])}")
    missing = [f for f in params["required"] if f not in arguments]
    if missing:
        raise ToolError(f"{name}: missing required field(s) {missing}")
    out = {}
    for field, schema in params["properties"].items():
        if field in arguments:
            out[field] = _check(name, field, schema, arguments[field])
        elif "default" in schema:
            out[field] = schema["default"]
    return out


class ToolRunner:
    """Runs validated tool calls on gpiozero RobotDevices. A move/turn replaces the previous one
    and stops after its duration; ``stop()`` cancels it at once."""

    def __init__(self, devices):
        self.devices = devices
        caps = devices.capabilities() if hasattr(devices, "capabilities") else {}
        self.tools = tool_schemas(devices.named_outputs(), **caps)
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def __call__(self, name, arguments=None) -> dict:
        args = validate(name, arguments, tools=self.tools)
        d = self.devices
        with self._lock:
            self._cancel()
            if name == "stop":
                d.stop()
            elif name == "move":
                s = args["speed"] if args["direction"] == "forward" else -args["speed"]
                d.drive(s, s)
                self._stop_after(args["duration"])
            elif name == "turn":
                d.turn(args["direction"], args["speed"])
                self._stop_after(args["duration"])
            elif name == "gripper":
                d.set_servo("gripper", 0.0 if args["action"] == "open" else 180.0)
            elif name == "servo":
                d.set_servo("servo", args["angle"])
            elif name == "set_pin":
                d.set_pin(args["name"], args["on"])
        return {"tool": name, "arguments": args}

    def stop(self) -> None:
        with self._lock:
            self._cancel()
            self.devices.stop()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _stop_after(self, seconds: float) -> None:
        t = threading.Timer(seconds, self._timed_stop)
        t.daemon = True
        self._timer = t
        t.start()

    def _timed_stop(self) -> None:
        with self._lock:
            if self._timer is not None and threading.current_thread() is self._timer:
                self._timer = None
                self.devices.stop()

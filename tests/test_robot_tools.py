"""Tool schemas and validation (no devices needed)."""
from __future__ import annotations

import json

import pytest

from enigma_edge.robot.tools import ToolError, tool_schemas, validate


def test_schemas_are_strict_json():
    tools = tool_schemas(["lamp", "led"])
    json.dumps(tools, allow_nan=False)
    names = [t["function"]["name"] for t in tools]
    assert names == ["move", "turn", "stop", "gripper", "servo", "set_pin"]
    for t in tools:
        params = t["function"]["parameters"]
        assert params["additionalProperties"] is False and params["type"] == "object"
    move = tools[0]["function"]["parameters"]["properties"]
    assert move["direction"]["enum"] == ["forward", "backward"]
    assert (move["speed"]["minimum"], move["speed"]["maximum"]) == (0.0, 1.0)
    assert tools[-1]["function"]["parameters"]["properties"]["name"]["enum"] == ["lamp", "led"]
    assert "set_pin" not in [t["function"]["name"] for t in tool_schemas()]


def test_valid_calls_get_defaults():
    assert validate("turn", {"direction": "left"}) == {"direction": "left", "speed": 0.5, "duration": 1.0}
    assert validate("stop") == {}
    assert validate("servo", {"angle": 180}) == {"angle": 180.0}
    assert validate("set_pin", {"name": "lamp", "on": False}, ["lamp"]) == {"name": "lamp", "on": False}


@pytest.mark.parametrize("name,args,match", [
    ("fly", {}, "unknown tool 'fly'"),
    ("move", {"direction": "forward", "speed": 0.5, "colour": "red"}, r"unknown field\(s\) \['colour'\]"),
    ("move", {"speed": 0.5}, r"missing required field\(s\) \['direction'\]"),
    ("move", {"direction": "sideways"}, "move.direction: must be one of"),
    ("move", {"direction": "forward", "speed": float("nan")}, "move.speed: must be finite"),
    ("move", {"direction": "forward", "speed": float("inf")}, "move.speed: must be finite"),
    ("move", {"direction": "forward", "speed": 1.01}, r"move.speed: must be <= 1.0"),
    ("move", {"direction": "forward", "speed": -0.1}, r"move.speed: must be >= 0.0"),
    ("move", {"direction": "forward", "duration": 0}, r"move.duration: must be > 0.0"),
    ("move", {"direction": "forward", "duration": 60}, r"move.duration: must be <= 10.0"),
    ("move", {"direction": "forward", "speed": True}, "must be a number"),
    ("move", {"direction": "forward", "speed": "0.5"}, "must be a number"),
    ("move", [1, 2], "arguments must be an object"),
    ("servo", {"angle": -5}, "servo.angle: must be >= 0.0"),
    ("gripper", {"action": "crush"}, "gripper.action: must be one of"),
    ("set_pin", {"name": "motor_left", "on": True}, "set_pin.name: must be one of"),
    ("set_pin", {"name": "lamp", "on": 1}, "set_pin.on: must be true or false"),
])
def test_invalid_calls_rejected_clearly(name, args, match):
    with pytest.raises(ToolError, match=match):
        validate(name, args, ["lamp"])


def test_tools_follow_the_hardware():
    names = [t["function"]["name"] for t in tool_schemas(["led"], gripper=False, servo=False)]
    assert names == ["move", "turn", "stop", "set_pin"]
    with pytest.raises(ToolError, match="unknown tool 'gripper'"):
        validate("gripper", {"action": "open"}, tools=tool_schemas(gripper=False))
    assert [t["function"]["name"] for t in tool_schemas(motors=False)] == ["stop", "gripper", "servo"]

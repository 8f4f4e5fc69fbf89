"""The robot's GPIO devices, built with gpiozero from the board profile's pin map.

The pin map is a plain mapping (the ``[gpio]`` table of ``boards/<board>.toml``); every key is
optional, BCM numbers (or any pin name gpiozero accepts, e.g. ``"GPIO17"``, ``"BOARD11"``)::

    led          = 17                 # LED (on/off)
    pwm_led      = 12                 # PWMLED (brightness 0..1)
    button       = 27                 # Button (pulled up, active low)
    servo        = 18                 # AngularServo 0..180 deg (1.0-2.0 ms pulses at 50 Hz)
    gripper      = 16                 # a second AngularServo: 0 = open, 180 = closed
    motor_left   = [5, 6]             # Motor [forward, backward] (PWM); or {forward, backward, enable}
    motor_right  = [13, 19]           #   both motors -> a gpiozero Robot (speed + turn)
    distance     = [23, 24]           # DistanceSensor [trigger, echo]; or {trigger, echo}
    [gpio.outputs]                    # extra named on/off outputs for the set_pin tool
    lamp = 22

Which pin library drives them is gpiozero's own setting: ``GPIOZERO_PIN_FACTORY`` (``lgpio`` on a
Pi 5; ``mock`` with ``GPIOZERO_MOCK_PIN_CLASS=mockpwmpin`` in tests) or ``pin_factory=``.
``close()`` (also on leaving the ``with`` block, and when building the devices fails part way)
stops the motors, switches every output off, then releases the pins; it is safe to call twice.
Any exception raised inside ``drive``/``turn``/``set_pin``/``set_servo`` stops the motors first.

>>> import os
>>> os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
'mock'
>>> os.environ.setdefault("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
'mockpwmpin'
>>> from enigma_edge.robot.gpio import RobotDevices
>>> with RobotDevices({"led": 17, "motor_left": [5, 6], "motor_right": [13, 19]}) as bot:
...     bot.drive(0.5, 0.5)
...     bot.set_pin("led", True)
...     bot.state()["motors"]
(0.5, 0.5)
"""
from __future__ import annotations

import math
import threading
from collections.abc import Mapping

KNOWN_KEYS = frozenset({"led", "pwm_led", "button", "servo", "gripper", "motor_left", "motor_right",
                        "distance", "outputs"})


class PinMapError(ValueError):
    """The pin map is malformed (unknown key, wrong shape, pin used twice)."""


def _pair(key: str, value, names: tuple[str, str]) -> dict:
    if isinstance(value, Mapping):
        extra = set(value) - set(names) - {"enable"}
        missing = [n for n in names if n not in value]
        if extra or missing:
            raise PinMapError(f"gpio.{key}: expected keys {list(names)} (+ optional enable), "
                              f"got {sorted(value)}")
        return dict(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return dict(zip(names, value))
    raise PinMapError(f"gpio.{key}: expected [{names[0]}, {names[1]}] or a table, got {value!r}")


def parse_pin_map(pin_map: Mapping) -> dict:
    """Validate a pin map; returns a normalized copy. Raises PinMapError with the offending key."""
    if not isinstance(pin_map, Mapping):
        raise PinMapError(f"pin map must be a table/dict, got {type(pin_map).__name__}")
    unknown = set(pin_map) - KNOWN_KEYS
    if unknown:
        raise PinMapError(f"unknown gpio keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
    out: dict = {}
    used: dict = {}

    def claim(pin, where):
        if isinstance(pin, bool) or not isinstance(pin, (int, str)):
            raise PinMapError(f"gpio.{where}: a pin is a BCM number or a pin name, got {pin!r}")
        if pin in used:
            raise PinMapError(f"pin {pin} is used by both gpio.{used[pin]} and gpio.{where}")
        used[pin] = where
        return pin

    for key in ("led", "pwm_led", "button", "servo", "gripper"):
        if key in pin_map:
            out[key] = claim(pin_map[key], key)
    for key in ("motor_left", "motor_right"):
        if key in pin_map:
            m = _pair(key, pin_map[key], ("forward", "backward"))
            out[key] = {k: claim(v, f"{key}.{k}") for k, v in m.items()}
    if ("motor_left" in out) != ("motor_right" in out):
        raise PinMapError("gpio: motor_left and motor_right come together (a two-motor robot)")
    if "distance" in pin_map:
        d = _pair("distance", pin_map["distance"], ("trigger", "echo"))
        out["distance"] = {k: claim(v, f"distance.{k}") for k, v in d.items()}
    outputs = pin_map.get("outputs", {})
    if not isinstance(outputs, Mapping):
        raise PinMapError("gpio.outputs must be a table of name = pin")
    out["outputs"] = {}
    for name, pin in outputs.items():
        if not str(name).isidentifier() or name in KNOWN_KEYS:
            raise PinMapError(f"gpio.outputs: bad output name {name!r}")
        out["outputs"][name] = claim(pin, f"outputs.{name}")
    return out


def _unit(name: str, v, lo: float = -1.0, hi: float = 1.0) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be within [{lo}, {hi}], got {v}")
    return float(v)


class RobotDevices:
    """All gpiozero devices of one robot. See the module docstring for the pin map."""

    def __init__(self, pin_map: Mapping, *, pin_factory=None, servo_pulse=(0.001, 0.002),
                 max_distance: float = 2.0):
        from gpiozero import (LED, PWMLED, AngularServo, Button, DigitalOutputDevice,
                              DistanceSensor, Motor, Robot)

        self.pins = parse_pin_map(pin_map)
        self._lock = threading.RLock()
        self._closed = False
        self.led = self.pwm_led = self.button = self.servo = self.gripper = None
        self.robot = self.distance = None
        self.outputs: dict = {}
        self._devices: list = []
        f = pin_factory

        def add(dev):
            self._devices.append(dev)
            return dev

        try:
            m = self.pins
            if "led" in m:
                self.led = add(LED(m["led"], pin_factory=f))
            if "pwm_led" in m:
                self.pwm_led = add(PWMLED(m["pwm_led"], pin_factory=f))
            if "button" in m:
                self.button = add(Button(m["button"], pin_factory=f))
            lo, hi = servo_pulse
            if "servo" in m:
                self.servo = add(AngularServo(m["servo"], min_angle=0, max_angle=180, initial_angle=None,
                                              min_pulse_width=lo, max_pulse_width=hi, pin_factory=f))
            if "gripper" in m:
                self.gripper = add(AngularServo(m["gripper"], min_angle=0, max_angle=180, initial_angle=None,
                                                min_pulse_width=lo, max_pulse_width=hi, pin_factory=f))
            if "motor_left" in m:
                left = Motor(pin_factory=f, **m["motor_left"])
                right = Motor(pin_factory=f, **m["motor_right"])
                self.robot = add(Robot(left=left, right=right, pin_factory=f))
            if "distance" in m:
                d = m["distance"]
                self.distance = add(DistanceSensor(echo=d["echo"], trigger=d["trigger"],
                                                   max_distance=max_distance, pin_factory=f))
            for name, pin in m["outputs"].items():
                self.outputs[name] = add(DigitalOutputDevice(pin, pin_factory=f))
        except BaseException:
            self.close()
            raise

    # ---- actions ----
    def drive(self, left: float, right: float) -> None:
        """Motor speeds -1..1 (negative = backward)."""
        left, right = _unit("left", left), _unit("right", right)
        with self._guard():
            self._need(self.robot, "motor_left/motor_right")
            self.robot.value = (left, right)

    def forward(self, speed: float = 0.5) -> None:
        self.drive(speed, speed)

    def backward(self, speed: float = 0.5) -> None:
        self.drive(-speed, -speed)

    def turn(self, direction: str, speed: float = 0.5) -> None:
        """Spin in place: "left" or "right"."""
        speed = _unit("speed", speed, 0.0, 1.0)
        if direction not in ("left", "right"):
            raise ValueError(f"direction must be 'left' or 'right', got {direction!r}")
        self.drive(-speed, speed) if direction == "left" else self.drive(speed, -speed)

    def stop(self) -> None:
        """Stop the motors (the emergency stop; servos and outputs keep their state)."""
        with self._lock:
            if self.robot is not None and not self.robot.closed:
                self.robot.stop()

    def set_servo(self, name: str, angle: float) -> None:
        angle = _unit("angle", angle, 0.0, 180.0)
        with self._guard():
            dev = {"servo": self.servo, "gripper": self.gripper}.get(name)
            self._need(dev, name)
            dev.angle = angle

    def set_pin(self, name: str, on: bool) -> None:
        """Switch a named output: "led", "pwm_led" or a key of ``outputs``."""
        if not isinstance(on, bool):
            raise ValueError(f"on must be true or false, got {on!r}")
        with self._guard():
            dev = self.named_outputs().get(name)
            if dev is None:
                raise ValueError(f"no output named {name!r}; named outputs: {sorted(self.named_outputs())}")
            dev.on() if on else dev.off()

    def capabilities(self) -> dict:
        """Which tool groups this robot can serve (see tools.tool_schemas)."""
        return {"motors": self.robot is not None, "servo": self.servo is not None,
                "gripper": self.gripper is not None}

    def named_outputs(self) -> dict:
        named = {"led": self.led, "pwm_led": self.pwm_led, **self.outputs}
        return {k: v for k, v in named.items() if v is not None}

    def state(self) -> dict:
        """Current values read back through gpiozero (for status replies and tests)."""
        with self._lock:
            s: dict = {"closed": self._closed}
            if self._closed:
                return s
            if self.robot is not None:
                s["motors"] = tuple(self.robot.value)
            for name in ("servo", "gripper"):
                dev = getattr(self, name)
                if dev is not None:
                    s[name] = dev.angle
            s["outputs"] = {k: v.value for k, v in self.named_outputs().items()}
            if self.button is not None:
                s["button"] = self.button.is_pressed
            if self.distance is not None:
                s["distance_m"] = self.distance.distance
            return s

    # ---- lifecycle ----
    def close(self) -> None:
        """Stop the motors, switch every output off, detach servos, release pins. Safe twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            errors = []
            for dev in self._devices:                    # first make everything safe...
                try:
                    if hasattr(dev, "stop"):
                        dev.stop()                       # Robot
                    elif hasattr(dev, "detach"):
                        dev.detach()                     # servos: no more pulses
                    elif hasattr(dev, "off"):
                        dev.off()
                except Exception as exc:  # keep going: the other outputs must still go off
                    errors.append(exc)
            for dev in reversed(self._devices):          # ...then release the pins
                try:
                    dev.close()
                except Exception as exc:
                    errors.append(exc)
            self._devices.clear()
            if errors:
                raise RuntimeError(f"closing the robot devices: {errors[0]}") from errors[0]

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "RobotDevices":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _need(self, dev, what: str) -> None:
        if self._closed:
            raise RuntimeError("robot devices are closed")
        if dev is None:
            raise ValueError(f"this robot has no {what} in its pin map")

    def _guard(self):
        devices = self

        class _Guard:
            def __enter__(self):
                devices._lock.acquire()

            def __exit__(self, exc_type, exc, tb):
                try:
                    if exc_type is not None and exc_type is not ValueError:
                        devices.stop()   # an unexpected failure mid-command: stop the motors
                finally:
                    devices._lock.release()
                return False

        return _Guard()

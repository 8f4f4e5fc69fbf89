"""gpiozero devices from a pin map, on gpiozero's own MockFactory (MockPWMPin read-back)."""
from __future__ import annotations

import time

import pytest

gpiozero = pytest.importorskip("gpiozero")  # the [robot] extra; CI installs it
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin, MockTriggerPin

from enigma_edge.robot.gpio import PinMapError, RobotDevices, parse_pin_map

pytestmark = pytest.mark.filterwarnings("ignore::gpiozero.PWMSoftwareFallback")

PINS = {"led": 17, "pwm_led": 12, "button": 27, "servo": 18, "gripper": 16,
        "motor_left": [5, 6], "motor_right": [13, 19], "distance": [23, 24], "outputs": {"lamp": 22}}


class MockPWMTriggerPin(MockTriggerPin, MockPWMPin):
    """gpiozero's MockTriggerPin, usable on a factory whose default pin class is MockPWMPin."""


@pytest.fixture
def factory():
    f = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = f
    echo = f.pin(24)
    f.pin(23, pin_class=MockPWMTriggerPin, echo_pin=echo, echo_time=0.00583)  # ~1.0 m round trip
    yield f
    f.reset()
    Device.pin_factory = None


def test_devices_drive_real_mock_pins(factory):
    with RobotDevices(PINS) as bot:
        bot.drive(0.5, -0.25)
        assert factory.pin(5).state == 0.5 and factory.pin(6).state == 0
        assert factory.pin(13).state == 0 and factory.pin(19).state == 0.25
        bot.turn("left", 0.4)
        assert factory.pin(6).state == pytest.approx(0.4) and factory.pin(13).state == pytest.approx(0.4)
        bot.set_servo("servo", 90)
        assert factory.pin(18).frequency == 50
        assert factory.pin(18).state == pytest.approx(0.0015 * 50)   # 1.5 ms of 20 ms
        bot.set_servo("gripper", 180)
        assert factory.pin(16).state == pytest.approx(0.002 * 50)
        bot.set_pin("led", True)
        bot.set_pin("lamp", True)
        assert factory.pin(17).state == 1 and factory.pin(22).state == 1
        factory.pin(27).drive_low()                                   # button pressed
        deadline = time.monotonic() + 5
        while bot.state().get("distance_m", 1.0) == 1.0 and time.monotonic() < deadline:
            time.sleep(0.05)
        s = bot.state()
        assert s["button"] is True
        assert s["distance_m"] == pytest.approx(1.0, abs=0.1)
        bot.stop()
        assert [factory.pin(n).state for n in (5, 6, 13, 19)] == [0, 0, 0, 0]
        assert factory.pin(17).state == 1                          # stop = motors only


def test_close_stops_everything_and_is_safe_twice(factory):
    bot = RobotDevices(PINS)
    bot.drive(1, 1)
    bot.set_pin("lamp", True)
    bot.set_servo("servo", 10)
    bot.close()
    assert [factory.pin(n).state for n in (5, 6, 13, 19)] == [0, 0, 0, 0]
    assert factory.pin(22).state == 0 and factory.pin(18).state == 0
    bot.close()
    with pytest.raises(RuntimeError, match="closed"):
        bot.drive(0.1, 0.1)
    with RobotDevices(PINS):                                          # pins were released
        pass


def test_bad_values_rejected_nothing_moves(factory):
    with RobotDevices(PINS) as bot:
        for args in ((float("nan"), 0), (1.5, 0), (True, 0), ("1", 0)):
            with pytest.raises(ValueError):
                bot.drive(*args)
        with pytest.raises(ValueError, match="no output named"):
            bot.set_pin("motor_left", True)
        with pytest.raises(ValueError):
            bot.set_servo("servo", 181)
        assert [factory.pin(n).state for n in (5, 6, 13, 19)] == [0, 0, 0, 0]


def test_pin_map_errors(factory):
    with pytest.raises(PinMapError, match="unknown gpio keys"):
        parse_pin_map({"laser": 4})
    with pytest.raises(PinMapError, match="used by both"):
        parse_pin_map({"led": 5, "motor_left": [5, 6], "motor_right": [13, 19]})
    with pytest.raises(PinMapError, match="come together"):
        parse_pin_map({"motor_left": [5, 6]})
    with pytest.raises(PinMapError, match="trigger"):
        parse_pin_map({"distance": [1, 2, 3]})
    assert parse_pin_map({"motor_left": {"forward": 5, "backward": 6, "enable": 26},
                          "motor_right": [13, 19]})["motor_left"]["enable"] == 26


def test_failed_construction_releases_claimed_pins(factory):
    factory.pin(19)
    from gpiozero import LED
    hog = LED(19)                                                     # pin 19 already taken
    with pytest.raises(Exception):
        RobotDevices({"led": 17, "motor_left": [5, 6], "motor_right": [13, 19]})
    hog.close()
    with RobotDevices({"led": 17, "motor_left": [5, 6], "motor_right": [13, 19]}) as bot:
        bot.set_pin("led", True)                                      # 17 was released and reused
        assert factory.pin(17).state == 1

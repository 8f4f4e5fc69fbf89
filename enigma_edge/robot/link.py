"""Host side of the serial robot link to our Arduino firmware (``firmware/robot.c``), over pyserial.

What it does for you:

- ``open()`` waits for the firmware's HELLO (asking for it with HELLO_REQ, so it works both when
  the board resets on open, like an Uno, and when it does not) instead of sleeping a fixed time;
  a port that never answers with a valid HELLO raises :class:`NotOurFirmware`.
- ``arm()`` refuses (:class:`SchemaMismatch`) when the firmware's schema hash differs from this
  package's (``protocol.SCHEMA_HASH``, the same table as ``firmware/protocol.h``).
- while armed, a background thread sends the current motor (and servo) setpoints at
  ``setpoint_hz`` (default 20 Hz, >= 10 Hz) -- they double as the heartbeat the MCU's failsafe
  watches; setters send at once too, so a change does not wait for the next tick.
- discrete actions (digital write, stop, arm, disarm, config) wait for their ACK and are retried
  with the SAME sequence number when it does not come (timeout doubling from ``ack_timeout`` up
  to 1 s, ``retries`` times); the firmware runs each one once.
- when the port disappears (cable pulled, ``/dev/serial/by-id/...`` gone) the thread keeps trying
  to reopen it and waits for HELLO again. The link comes back DISARMED: the MCU has stopped the
  motors and latched its fault by then, and only an explicit ``arm()`` moves them again.
- ``counters()``: CRC errors, resyncs, retries, timeouts, reconnects, frames, plus the MCU's own.

Values: motors are -1.0..1.0 (sent as -1000..1000), the servo 0..180 degrees; NaN, infinities and
out-of-range values raise ``ValueError`` here, and the MCU clamps whatever reaches it anyway.

>>> from enigma_edge.robot.link import Link
>>> with Link("/dev/serial/by-id/usb-Arduino_Uno-if00") as link:   # doctest: +SKIP
...     link.arm()
...     link.set_motors(0.5, 0.5)       # both wheels forward at half speed
...     link.digital_write(13, True)    # the Uno's LED
"""
from __future__ import annotations

import math
import struct
import threading
import time
from dataclasses import dataclass

from . import protocol as p


class LinkError(RuntimeError):
    """The robot link failed (port gone, no answer, action refused)."""


class NotOurFirmware(LinkError):
    """The port answered with no valid HELLO: not the enigma-edge firmware (or not running)."""


class SchemaMismatch(LinkError):
    """The firmware speaks another protocol schema: the host refuses to arm it."""


class ActionRejected(LinkError):
    """The MCU answered an action with an error code."""


@dataclass(frozen=True)
class Hello:
    fw_version: tuple[int, int]
    proto_version: int
    schema_hash: int
    failsafe_ms: int
    reset_cause: int      # the MCU's MCUSR at boot (bit 3: watchdog)
    flags: int
    last_action_seq: int

    @property
    def schema_ok(self) -> bool:
        return self.proto_version == p.PROTO_VERSION and self.schema_hash == p.SCHEMA_HASH


@dataclass(frozen=True)
class Status:
    flags: int
    motor_left: int       # applied, -1000..1000
    motor_right: int
    servo_deg: int        # 255: servo not driven yet
    crc_errors: int       # MCU counters (16-bit, wrapping)
    resyncs: int
    frames_ok: int
    actions: int
    last_action_seq: int
    uptime_ms: int
    tx_dropped: int       # STATUS replies skipped because the MCU's transmit ring was full

    @property
    def armed(self) -> bool:
        return bool(self.flags & p.FLAG_ARMED)

    @property
    def fault_link(self) -> bool:
        return bool(self.flags & p.FLAG_FAULT_LINK)


@dataclass(frozen=True)
class State:
    pind: int
    pinb: int
    pinc: int
    analog: tuple[int, ...]   # A0..A5, 10-bit

    def digital(self, pin: int) -> bool:
        """Arduino pin number 0..19 (14..19 = A0..A5) -> level."""
        if 0 <= pin <= 7:
            return bool(self.pind >> pin & 1)
        if 8 <= pin <= 13:
            return bool(self.pinb >> (pin - 8) & 1)
        if 14 <= pin <= 19:
            return bool(self.pinc >> (pin - 14) & 1)
        raise ValueError(f"pin {pin} is not an Uno pin (0..19)")


def _finite(name: str, value, lo: float, hi: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be within [{lo}, {hi}], got {v}")
    return v


class Link:
    """One serial link to the robot firmware. See the module docstring."""

    def __init__(self, port: str, baudrate: int = 115200, *, hello_timeout: float = 3.0,
                 setpoint_hz: float = 20.0, ack_timeout: float = 0.2, retries: int = 4,
                 reconnect: bool = True, reconnect_interval: float = 0.2,
                 failsafe_ms: int | None = None):
        if setpoint_hz < 10:
            raise ValueError(f"setpoint_hz must be >= 10 (the failsafe expects a steady stream), got {setpoint_hz}")
        if failsafe_ms is not None and not p.FAILSAFE_MIN_MS <= failsafe_ms <= p.FAILSAFE_MAX_MS:
            raise ValueError(f"failsafe_ms must be within [{p.FAILSAFE_MIN_MS}, {p.FAILSAFE_MAX_MS}]")
        self.port = port
        self.baudrate = baudrate
        self.hello_timeout = hello_timeout
        self.setpoint_period = 1.0 / setpoint_hz
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.reconnect = reconnect
        self.reconnect_interval = reconnect_interval
        self.failsafe_ms = failsafe_ms
        self.hello: Hello | None = None
        self.status: Status | None = None
        self.fault: str | None = None      # "link" once the MCU reported its latched failsafe
        self._ser = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._action_lock = threading.Lock()
        self._cv = threading.Condition()
        self._connected = False
        self._armed = False
        self._motors = (0, 0)
        self._servo: int | None = None
        self._frame_seq = 0
        self._action_seq = 0
        self._last_rx_seq = 0
        self._replies: dict[tuple[int, int], p.Frame] = {}
        self._waiting: set[tuple[int, int]] = set()
        self._decoder = p.FrameDecoder()
        self._bytes_rx = 0
        self._counts = dict(retries=0, timeouts=0, reconnects=0, disconnects=0,
                            frames_tx=0, setpoints_tx=0)
        self._closed = False

    # ---- lifecycle ----
    def open(self) -> "Link":
        if self._thread is not None:
            return self
        self._ser = self._open_port()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"robot-link {self.port}", daemon=True)
        self._thread.start()
        if not self._wait_connected(self.hello_timeout):
            got = self._bytes_rx
            bad = self._decoder.crc_errors + self._decoder.resyncs
            self.close()
            raise NotOurFirmware(
                f"{self.port}: no enigma-edge HELLO within {self.hello_timeout:.1f} s "
                f"({got} bytes received, {bad} invalid frames): not our firmware, or not running")
        if self.failsafe_ms is not None:
            self.configure(self.failsafe_ms)
        return self

    def close(self) -> None:
        """Stop the motors (best effort), stop the thread, close the port. Safe twice."""
        if self._thread is not None:
            if self._connected and self._armed:
                try:
                    self.stop()
                except LinkError:
                    pass
            self._stop.set()
            self._thread.join(timeout=2)
            self._thread = None
        self._armed = False
        if self._ser is not None:
            try:
                self._ser.close()
            except OSError:
                pass
            self._ser = None
        self._connected = False

    def __enter__(self) -> "Link":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def armed(self) -> bool:
        return self._armed

    def counters(self) -> dict[str, int]:
        c = dict(self._counts, crc_errors=self._decoder.crc_errors, resyncs=self._decoder.resyncs,
                 frames_rx=self._decoder.frames, bytes_rx=self._bytes_rx)
        if self.status is not None:
            c.update(mcu_crc_errors=self.status.crc_errors, mcu_resyncs=self.status.resyncs,
                     mcu_frames_ok=self.status.frames_ok, mcu_actions=self.status.actions,
                     mcu_tx_dropped=self.status.tx_dropped)
        return c

    # ---- commands ----
    def arm(self) -> None:
        """Clear the MCU's latched fault and enable the motors (at zero)."""
        hello = self._require_hello()
        if not hello.schema_ok:
            raise SchemaMismatch(
                f"{self.port}: firmware schema {hello.schema_hash:#010x} (protocol v{hello.proto_version}, "
                f"firmware {hello.fw_version[0]}.{hello.fw_version[1]}) != host schema {p.SCHEMA_HASH:#010x} "
                f"(v{p.PROTO_VERSION}): refusing to arm; flash the firmware from this enigma-edge version")
        self._motors = (0, 0)
        self._action(p.MSG_ARM)
        self.fault = None
        self._armed = True
        self._send_setpoints()

    def disarm(self) -> None:
        self._armed = False
        self._motors = (0, 0)
        self._action(p.MSG_DISARM)

    def stop(self) -> None:
        """Emergency stop: motors to zero and disarm (ARM needed to move again)."""
        self._armed = False
        self._motors = (0, 0)
        self._action(p.MSG_STOP)

    def configure(self, failsafe_ms: int) -> None:
        """Set the MCU's link-loss timeout (clamped there to FAILSAFE_MIN_MS..FAILSAFE_MAX_MS)."""
        self._action(p.MSG_CONFIG, struct.pack(p.LAYOUT["CONFIG"], int(failsafe_ms)))

    def set_motors(self, left: float, right: float) -> None:
        """Motor speeds -1.0..1.0 (negative = reverse). Requires arm()."""
        left = _finite("left", left, -1.0, 1.0)
        right = _finite("right", right, -1.0, 1.0)
        self.set_motors_raw(round(left * p.MOTOR_MAX), round(right * p.MOTOR_MAX))

    def set_motors_raw(self, left: int, right: int) -> None:
        """Motor setpoints as sent (int16); the MCU clamps them to +-MOTOR_MAX."""
        left, right = int(left), int(right)
        if not (-32768 <= left <= 32767 and -32768 <= right <= 32767):
            raise ValueError(f"raw motor setpoints are int16, got {left}, {right}")
        self._require_armed()
        self._motors = (left, right)
        self._send_setpoints()

    def set_servo(self, degrees: float) -> None:
        """Servo angle 0..180 degrees. Requires arm()."""
        deg = _finite("servo angle", degrees, p.SERVO_MIN_DEG, p.SERVO_MAX_DEG)
        self._require_armed()
        self._servo = round(deg)
        self._send_setpoints()

    def digital_write(self, pin: int, value: bool) -> None:
        if pin not in p.WRITABLE_PINS:
            raise ValueError(f"pin {pin} is not writable; the firmware allows {list(p.WRITABLE_PINS)}")
        self._action(p.MSG_DIGITAL_WRITE, struct.pack(p.LAYOUT["DIGITAL_WRITE"], pin, 1 if value else 0))

    def read(self) -> State:
        """Digital port levels and A0..A5."""
        f = self.transact(p.MSG_READ)
        v = f.unpack()
        return State(v[0], v[1], v[2], tuple(v[3:]))

    def heartbeat(self) -> Status:
        """One HEARTBEAT -> STATUS round trip (also refreshes ``status``)."""
        f = self.transact(p.MSG_HEARTBEAT)
        return Status(*f.unpack())

    def request_hello(self) -> Hello:
        self.transact(p.MSG_HELLO_REQ)
        return self._require_hello()

    # ---- low level (tests and benchmarks use these) ----
    def transact(self, type: int, payload: bytes = b"", *, seq: int | None = None) -> p.Frame:
        """Send one frame and wait for its reply (ACK, STATE, STATUS or HELLO), retrying with the
        same seq. Actions get the next action seq unless ``seq`` is given. ACK errors raise."""
        is_action = p.MSG_DIGITAL_WRITE <= type <= p.MSG_CONFIG and type != p.MSG_READ
        reply_type = {p.MSG_READ: p.MSG_STATE, p.MSG_HELLO_REQ: p.MSG_HELLO, p.MSG_HEARTBEAT: p.MSG_STATUS,
                      p.MSG_SET_MOTORS: p.MSG_STATUS, p.MSG_SET_SERVO: p.MSG_STATUS}.get(type, p.MSG_ACK)
        with self._action_lock:
            if seq is None:
                if is_action:
                    self._action_seq = (self._action_seq + 1) & 0xFF
                    seq = self._action_seq
                else:
                    seq = self._next_frame_seq()
            # ACKs are keyed by the acked type (an error may answer any request with an ACK)
            keys = {(type, seq & 0xFF)} | ({(reply_type, seq & 0xFF)} if reply_type != p.MSG_ACK else set())
            with self._cv:
                for key in keys:
                    self._replies.pop(key, None)
                self._waiting |= keys
            try:
                for attempt in range(self.retries + 1):
                    if attempt:
                        self._counts["retries"] += 1
                    if not self._wait_connected(self.ack_timeout * (self.retries + 1)):
                        raise LinkError(f"{self.port}: link is down")
                    self._write(p.encode_frame(type, seq, self._last_rx_seq, payload))
                    wait = min(self.ack_timeout * 2 ** attempt, max(self.ack_timeout, 1.0))  # backoff
                    with self._cv:
                        if self._cv.wait_for(lambda: any(k in self._replies for k in keys), wait):
                            frame = next(self._replies.pop(k) for k in keys if k in self._replies)
                            break
                else:
                    self._counts["timeouts"] += 1
                    raise LinkError(f"{self.port}: no reply to {p.MSG_NAMES.get(type, type)} "
                                    f"(seq {seq}) after {self.retries + 1} tries")
            finally:
                with self._cv:
                    self._waiting -= keys
        if frame.type == p.MSG_ACK:
            _seq, _type, code = frame.unpack()
            if code not in (p.ACK_OK, p.ACK_DUPLICATE):
                raise ActionRejected(f"{p.MSG_NAMES.get(type, type)} rejected by the MCU: "
                                     f"{p.ACK_NAMES.get(code, code)}")
        return frame

    def write_raw(self, data: bytes) -> None:
        """Put bytes on the wire as they are (noise, oversize frames: tests)."""
        self._write(bytes(data))

    # ---- internals ----
    def _action(self, type: int, payload: bytes = b"") -> None:
        self.transact(type, payload)

    def _require_hello(self) -> Hello:
        if self.hello is None:
            raise LinkError(f"{self.port}: not connected (no HELLO yet)")
        return self.hello

    def _require_armed(self) -> None:
        if not self._armed:
            why = " (the MCU latched a link-loss fault)" if self.fault else ""
            raise LinkError(f"{self.port}: not armed{why}; call arm() first")

    def _next_frame_seq(self) -> int:
        self._frame_seq = (self._frame_seq + 1) & 0xFF
        return self._frame_seq

    def _open_port(self):
        import serial  # pyserial: imported on use

        try:
            return serial.Serial(self.port, self.baudrate, timeout=0.01, write_timeout=1.0)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"cannot open {self.port}: {exc}") from exc

    def _wait_connected(self, timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: self._connected or self._stop.is_set(), timeout) and self._connected

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            ser = self._ser
            if ser is None:
                raise LinkError(f"{self.port}: link is down")
            try:
                ser.write(data)
                self._counts["frames_tx"] += data.count(0)
            except Exception as exc:  # serial.SerialException, OSError, termios errors
                self._lost(exc)
                raise LinkError(f"{self.port}: write failed: {exc}") from exc

    def _send_setpoints(self) -> None:
        if not (self._armed and self._connected):
            return
        frame = p.encode_frame(p.MSG_SET_MOTORS, self._next_frame_seq(), self._last_rx_seq,
                               struct.pack(p.LAYOUT["SET_MOTORS"], *self._motors))
        if self._servo is not None:
            frame += p.encode_frame(p.MSG_SET_SERVO, self._next_frame_seq(), self._last_rx_seq,
                                    struct.pack(p.LAYOUT["SET_SERVO"], self._servo))
        self._write(frame)
        self._counts["setpoints_tx"] += 1

    def _lost(self, exc) -> None:
        with self._cv:
            if not self._connected and self._ser is None:
                return
            self._connected = False
            self._armed = False
            self._counts["disconnects"] += 1
            ser, self._ser = self._ser, None
            self._cv.notify_all()
        if ser is not None:
            try:
                ser.close()
            except Exception:
                pass

    def _dispatch(self, f: p.Frame) -> None:
        self._last_rx_seq = f.seq
        if f.type == p.MSG_HELLO:
            v = f.unpack()
            hello = Hello((v[0], v[1]), v[2], v[3], v[4], v[5], v[6], v[7])
            with self._cv:
                if self._connected and self._armed:   # unasked HELLO: the MCU rebooted (watchdog,
                    self._armed = False                # brown-out, reset): it is disarmed now
                    self.fault = "mcu reset"
                self.hello = hello
                if not self._connected:
                    self._action_seq = hello.last_action_seq   # next action: +1, never a duplicate
                self._connected = True
                self._replies[(p.MSG_HELLO, f.ack)] = f
                self._cv.notify_all()
            return
        if f.type == p.MSG_STATUS:
            status = Status(*f.unpack())
            self.status = status
            if not status.armed and self._armed:   # answers a frame sent after our ARM
                self._armed = False                 # the MCU failsafed (or rebooted): stay disarmed
                self.fault = "link" if status.fault_link else "mcu disarmed"
        if f.type == p.MSG_ACK and len(f.payload) == 3:
            key = (f.payload[1], f.payload[0])
        else:
            key = (f.type, f.ack)
        with self._cv:
            if key in self._waiting:
                self._replies[key] = f
                self._cv.notify_all()

    def _run(self) -> None:
        next_tick = time.monotonic()
        next_hello_req = 0.0
        next_retry_open = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            ser = self._ser
            if ser is None:
                if not self.reconnect:
                    time.sleep(0.05)
                    continue
                if now >= next_retry_open:
                    next_retry_open = now + self.reconnect_interval
                    try:
                        ser = self._open_port()
                    except LinkError:
                        time.sleep(0.02)
                        continue
                    self._decoder.reset()
                    self._ser = ser
                    self._counts["reconnects"] += 1
                    next_hello_req = 0.0
                else:
                    time.sleep(0.02)
                    continue
            try:
                data = ser.read(max(1, ser.in_waiting))
            except Exception as exc:  # port vanished
                self._lost(exc)
                continue
            if data:
                self._bytes_rx += len(data)
                for frame in self._decoder.feed(data):
                    self._dispatch(frame)
            now = time.monotonic()
            try:
                if not self._connected:
                    if now >= next_hello_req:
                        next_hello_req = now + 0.25
                        self._write(p.encode_frame(p.MSG_HELLO_REQ, self._next_frame_seq(), 0))
                elif now >= next_tick:
                    next_tick = now + self.setpoint_period
                    if self._armed:
                        self._send_setpoints()
                    elif now >= next_hello_req:  # disarmed: a slow heartbeat keeps status fresh
                        next_hello_req = now + 0.5
                        self._write(p.encode_frame(p.MSG_HEARTBEAT, self._next_frame_seq(), self._last_rx_seq))
            except LinkError:
                continue


class LinkRobot:
    """The Arduino behind a :class:`Link`, with the device interface the tools and the daemon use
    (``drive``, ``turn``, ``stop``, ``set_servo``, ``set_pin``, ``named_outputs``, ``state``,
    ``close``), so ``ToolRunner(LinkRobot(link))`` drives the firmware like gpiozero devices.

    A motion command arms the MCU if it is not armed (also after a link-loss fault: the latch
    exists so stale setpoints never resume motion, and a new command is not stale); ``stop()`` is
    the emergency stop and disarms. The Uno firmware has one servo (D9): "servo" and "gripper"
    both drive it (gripper: 0 = open, 180 = closed). ``outputs`` names writable pins.

    >>> robot = LinkRobot(Link("/dev/ttyACM0").open(), outputs={"led": 13})   # doctest: +SKIP
    >>> robot.drive(0.5, 0.5)                                                  # doctest: +SKIP
    """

    def __init__(self, link: Link, outputs: dict[str, int] | None = None):
        outputs = {"led": 13} if outputs is None else dict(outputs)
        for name, pin in outputs.items():
            if pin not in p.WRITABLE_PINS:
                raise ValueError(f"output {name!r}: pin {pin} is not writable; the firmware allows {list(p.WRITABLE_PINS)}")
        self.link = link
        self.outputs = outputs
        self._values = {name: False for name in outputs}

    def _armed(self) -> None:
        if not self.link.armed:
            self.link.arm()

    def drive(self, left: float, right: float) -> None:
        _finite("left", left, -1.0, 1.0)
        _finite("right", right, -1.0, 1.0)
        self._armed()
        self.link.set_motors(left, right)

    def turn(self, direction: str, speed: float = 0.5) -> None:
        speed = _finite("speed", speed, 0.0, 1.0)
        if direction not in ("left", "right"):
            raise ValueError(f"direction must be 'left' or 'right', got {direction!r}")
        self.drive(-speed, speed) if direction == "left" else self.drive(speed, -speed)

    def stop(self) -> None:
        if self.link.connected:
            self.link.stop()

    def set_servo(self, name: str, angle: float) -> None:
        if name not in ("servo", "gripper"):
            raise ValueError(f"no servo named {name!r}; this robot has 'servo' and 'gripper' (one channel, D9)")
        _finite("angle", angle, p.SERVO_MIN_DEG, p.SERVO_MAX_DEG)
        self._armed()
        self.link.set_servo(angle)

    def set_pin(self, name: str, on: bool) -> None:
        if not isinstance(on, bool):
            raise ValueError(f"on must be true or false, got {on!r}")
        if name not in self.outputs:
            raise ValueError(f"no output named {name!r}; named outputs: {sorted(self.outputs)}")
        self.link.digital_write(self.outputs[name], on)
        self._values[name] = on

    def capabilities(self) -> dict:
        return {"motors": True, "servo": True, "gripper": True}

    def named_outputs(self) -> dict:
        return dict(self.outputs)

    def state(self) -> dict:
        st = self.link.status
        s: dict = {"connected": self.link.connected, "armed": self.link.armed, "fault": self.link.fault,
                   "outputs": dict(self._values), "counters": self.link.counters()}
        if st is not None:
            s["motors"] = (st.motor_left / p.MOTOR_MAX, st.motor_right / p.MOTOR_MAX)
            s["servo"] = None if st.servo_deg == 255 else st.servo_deg
        return s

    def close(self) -> None:
        """Stop (best effort) and close the link. Safe twice."""
        self.link.close()

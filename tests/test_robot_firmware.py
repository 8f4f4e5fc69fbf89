"""The real robot firmware (firmware/robot.c, built with avr-gcc) under simavr, driven through
enigma_edge.robot.link over the harness's pty. Pin and PWM read-back and all timing come from the
harness, in emulated cycles."""
from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from enigma_edge.robot import protocol as p
from enigma_edge.robot.link import ActionRejected, Link, LinkError, NotOurFirmware, SchemaMismatch
from enigma_edge.robot.sim import F_CPU, SimAVR, build_firmware

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
SLOW = dict(ack_timeout=0.5, retries=6)  # a loaded machine can run simavr slower than real time


@pytest.fixture(scope="session")
def build():
    return build_firmware(FIRMWARE)


@pytest.fixture
def sim(build):
    with SimAVR(build / "robot.elf", build / "sim_harness") as s:
        yield s


@pytest.fixture
def link(sim):
    # generous ACK timeout: a loaded test machine can run simavr slower than real time
    with Link(sim.pty, **SLOW) as lk:
        yield lk


def moved_since(sim, mark):
    """PWM events with a non-zero duty on either motor since mark."""
    return [e for e in sim.snapshot()[mark:] if e.kind == "PWM" and e.value > 0]


def test_schema_table_is_the_headers(sim):
    header = (FIRMWARE / "protocol.h").read_text()
    assert p.schema_from_header(header) == p.SCHEMA
    with Link(sim.pty, **SLOW) as link:
        assert link.hello.schema_hash == p.SCHEMA_HASH == p.schema_hash(p.schema_from_header(header))
        assert link.hello.schema_ok
        assert link.hello.fw_version == (1, 0)
        assert link.hello.failsafe_ms == 500


def test_arm_drive_and_read_back_pwm(sim, link):
    with pytest.raises(LinkError, match="not armed"):
        link.set_motors(0.5, 0.5)
    link.arm()
    mark = sim.mark()
    link.set_motors(0.5, -0.25)
    # duty = (floor(|v| * 255) + 1) / 256 on an 8-bit fast PWM: 500 -> OCR 127, 250 -> OCR 63
    assert sim.wait_value("PWM", "D6", 128 / 256, since=mark)
    assert sim.wait_value("PWM", "D5", 64 / 256, since=mark)
    assert sim.wait_value("PIN", "D4", 1, since=mark)      # right motor reversed
    assert sim.value("PIN", "D7") == 0                      # left forward
    link.set_servo(90)
    assert sim.wait_value("SERVO", "D9", 1500, since=mark)
    st = link.heartbeat()
    assert (st.motor_left, st.motor_right, st.servo_deg, st.armed) == (500, -250, 90, True)
    link.digital_write(13, True)
    assert sim.wait_value("PIN", "D13", 1, since=mark)
    assert link.read().digital(13) is True
    mark = sim.mark()
    link.stop()
    assert sim.wait_value("PWM", "D6", 0, since=mark) and sim.wait_value("PWM", "D5", 0, since=mark)
    assert not link.armed and not link.heartbeat().armed
    assert link.counters()["crc_errors"] == 0


HOST = """
import sys, time
from enigma_edge.robot.link import Link
link = Link(sys.argv[1], failsafe_ms=int(sys.argv[2]), ack_timeout=0.5, retries=6)
link.open(); link.arm(); link.set_motors(0.8, 0.6)
print("driving", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("failsafe_ms", [500, 200])
def test_host_killed_failsafe_stops_within_time_and_latches(sim, tmp_path, failsafe_ms):
    host = subprocess.Popen([sys.executable, "-c", HOST, sim.pty, str(failsafe_ms)], cwd=tmp_path,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().strip() == "driving"
        assert sim.wait_value("PWM", "D6", 205 / 256)         # 800 -> OCR 204
        time.sleep(0.3)                                         # driving, heartbeats flowing
        mark = sim.mark()
        assert sim.value("PWM", "D6") > 0
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
        host.stdout.close()
    stop = sim.wait_value("PWM", "D6", 0, since=mark)
    assert stop is not None, "motors still running after the host died"
    assert sim.wait_value("PWM", "D5", 0, since=mark)
    events = sim.snapshot()
    last_rx = max(e.cycle for e in events if e.kind == "RX0" and e.cycle <= stop.cycle)
    quiet = (stop.cycle - last_rx) / F_CPU
    # the MCU clock ticks every 1.024 ms: the stop lands in (T - 0.3 ms, T + 1.1 ms] + loop latency
    assert failsafe_ms / 1000 - 0.001 <= quiet <= failsafe_ms / 1000 + 0.005, quiet

    with Link(sim.pty, **SLOW) as link:                                  # a new host: fault is latched
        st = link.heartbeat()
        assert st.fault_link and not st.armed and (st.motor_left, st.motor_right) == (0, 0)
        mark = sim.mark()
        for seq in range(5):                                     # setpoints without ARM: ignored
            link.write_raw(p.encode_frame(p.MSG_SET_MOTORS, 100 + seq, 0, struct.pack("<hh", 900, 900)))
        st = link.heartbeat()
        assert st.fault_link and (st.motor_left, st.motor_right) == (0, 0)
        assert not moved_since(sim, mark)
        link.arm()                                               # explicit ARM clears the latch
        assert not link.heartbeat().fault_link
        link.set_motors(0.3, 0.3)
        assert sim.wait_value("PWM", "D6", 77 / 256, since=mark)


def test_noise_and_bit_flips_are_rejected_nothing_moves(sim, link):
    link.ack_timeout = 3.0      # the heartbeat after the burst waits behind ~3.5 KB on the wire
    link.arm()
    before = link.heartbeat()
    rng = random.Random(1234)
    mark = sim.mark()
    noise = bytes(rng.randrange(256) for _ in range(1500))
    for i in range(0, len(noise), 300):
        link.write_raw(noise[i:i + 300])
        time.sleep(0.03)
    link.write_raw(b"\x00")
    flipped = 0
    for k in range(150):
        good = bytearray(p.encode_frame(p.MSG_SET_MOTORS, k, 0, struct.pack("<hh", 1000, 1000)))
        i = rng.randrange(len(good) - 1)              # any byte but the delimiter
        good[i] ^= 1 << rng.randrange(8)
        link.write_raw(bytes(good))
        flipped += 1
        if k % 20 == 19:
            time.sleep(0.03)
    after = link.heartbeat()
    assert not moved_since(sim, mark)
    assert (after.motor_left, after.motor_right) == (0, 0) and after.armed
    assert after.crc_errors - before.crc_errors >= flipped   # each flipped frame failed its CRC
    assert link.counters()["crc_errors"] == 0                # and nothing bad came back


def test_oversize_frame_resyncs_at_next_delimiter(sim, link):
    before = link.heartbeat()
    link.write_raw(b"\x55" * 300 + b"\x00")
    link.write_raw(p.encode_frame(p.MSG_DIGITAL_WRITE, 77, 0, bytes(100), check_length=False))
    mark = sim.mark()
    link.digital_write(12, True)                              # the very next frame works
    assert sim.wait_value("PIN", "D12", 1, since=mark)
    after = link.heartbeat()
    assert after.resyncs - before.resyncs == 2
    assert after.crc_errors == before.crc_errors
    with pytest.raises(ValueError, match="exceeds"):
        p.encode_frame(p.MSG_DIGITAL_WRITE, 1, 0, bytes(65))


def test_duplicate_seq_runs_once(sim, link):
    before = link.heartbeat().actions
    f = link.transact(p.MSG_DIGITAL_WRITE, bytes((13, 1)), seq=200)
    assert f.unpack() == (200, p.MSG_DIGITAL_WRITE, p.ACK_OK)
    assert sim.wait_value("PIN", "D13", 1)
    mark = sim.mark()
    f = link.transact(p.MSG_DIGITAL_WRITE, bytes((13, 0)), seq=200)   # a "retry" with other data
    assert f.unpack() == (200, p.MSG_DIGITAL_WRITE, p.ACK_DUPLICATE)
    link.heartbeat()
    assert not [e for e in sim.snapshot()[mark:] if e.kind == "PIN" and e.pin == "D13"]
    assert link.heartbeat().actions == before + 1


def test_wrapped_seq_keeps_executing(sim, link):
    before = link.heartbeat().actions
    mark = sim.mark()
    n = 300                                                   # > 256: the action seq wraps
    for i in range(n):
        link.digital_write(13, i % 2 == 0)
    st = link.heartbeat()
    edges = [e for e in sim.snapshot()[mark:] if e.kind == "PIN" and e.pin == "D13"]
    assert len(edges) == n
    assert st.actions - before == n
    assert link.counters()["retries"] == 0


def test_bad_pin_rejected_by_host_and_mcu(sim, link):
    with pytest.raises(ValueError, match="not writable"):
        link.digital_write(6, True)
    with pytest.raises(ActionRejected, match="ACK_BAD_PIN"):
        link.transact(p.MSG_DIGITAL_WRITE, bytes((6, 1)))    # a motor pin, straight to the MCU
    assert sim.value("PWM", "D6") == 0


def test_nan_and_out_of_range(sim, link):
    link.arm()
    for bad in (float("nan"), float("inf"), 1.5, -1.01, "fast"):
        with pytest.raises(ValueError):
            link.set_motors(bad, 0)
    for bad in (float("nan"), -1, 181):
        with pytest.raises(ValueError):
            link.set_servo(bad)
    mark = sim.mark()
    with pytest.raises(ValueError, match="int16"):
        link.set_motors_raw(40000, 0)
    link.set_motors_raw(5000, -32768)                         # past the host checks: MCU clamps
    assert sim.wait_value("PWM", "D6", 1.0, since=mark) and sim.wait_value("PWM", "D5", 1.0, since=mark)
    st = link.heartbeat()
    assert (st.motor_left, st.motor_right) == (1000, -1000)
    f = link.transact(p.MSG_SET_SERVO, struct.pack("<h", 500))
    assert f.type == p.MSG_STATUS and f.unpack()[3] == 180
    assert sim.wait_value("SERVO", "D9", 2000, since=mark)
    link.transact(p.MSG_SET_SERVO, struct.pack("<h", -40))
    assert sim.wait_value("SERVO", "D9", 1000, since=mark)
    with pytest.raises(ActionRejected, match="ACK_BAD_LENGTH"):
        link.transact(p.MSG_SET_MOTORS, b"\x01")             # wrong payload length


def test_schema_mismatch_refuses_to_arm(build):
    header = (FIRMWARE / "protocol.h").read_text()
    with SimAVR(build / "robot_skew.elf", build / "sim_harness") as sim, Link(sim.pty, **SLOW) as link:
        assert link.hello.schema_hash == p.schema_hash(p.schema_from_header(header, skew=True))
        assert link.hello.schema_hash != p.SCHEMA_HASH and not link.hello.schema_ok
        with pytest.raises(SchemaMismatch, match="refusing to arm"):
            link.arm()
        with pytest.raises(LinkError, match="not armed"):
            link.set_motors(1, 1)
        assert not link.heartbeat().armed
        assert sim.value("PWM", "D6") == 0


def test_port_that_is_not_our_firmware():
    master, slave = os.openpty()
    stop = threading.Event()

    def chatter():                                            # some other sketch printing text
        while not stop.is_set():
            os.write(master, b"temp=21.5 hum=40\r\n")
            time.sleep(0.05)

    t = threading.Thread(target=chatter, daemon=True)
    t.start()
    try:
        link = Link(os.ttyname(slave), hello_timeout=1.0)
        with pytest.raises(NotOurFirmware, match="not our firmware") as exc:
            link.open()
        assert "bytes received" in str(exc.value)
        link.close()
    finally:
        stop.set()
        t.join()
        os.close(master)
        os.close(slave)
    with pytest.raises(LinkError, match="cannot open"):
        Link("/dev/nonexistent-robot").open()


def test_reconnect_when_port_disappears_and_returns(build, tmp_path):
    by_id = tmp_path / "usb-Arduino_Uno-if00"
    sim1 = SimAVR(build / "robot.elf", build / "sim_harness")
    by_id.symlink_to(sim1.pty)
    link = Link(str(by_id), reconnect_interval=0.1, **SLOW)
    try:
        link.open()
        link.arm()
        link.set_motors(0.5, 0.5)
        assert sim1.wait_value("PWM", "D6", 0.5)
        sim1.close()                                          # cable pulled
        by_id.unlink()
        deadline = time.monotonic() + 10
        while link.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not link.connected and not link.armed
        with SimAVR(build / "robot.elf", build / "sim_harness") as sim2:
            by_id.symlink_to(sim2.pty)                        # plugged back in
            deadline = time.monotonic() + 10
            while not link.connected and time.monotonic() < deadline:
                time.sleep(0.02)
            assert link.connected
            c = link.counters()
            assert c["disconnects"] == 1 and c["reconnects"] >= 1
            with pytest.raises(LinkError, match="not armed"):  # comes back disarmed
                link.set_motors(0.5, 0.5)
            link.arm()
            link.set_motors(0.25, 0.25)
            assert sim2.wait_value("PWM", "D6", 64 / 256)
            link.close()
    finally:
        link.close()
        sim1.close()


def test_decoder_host_side_counts_and_resyncs():
    dec = p.FrameDecoder()
    good = p.encode_frame(p.MSG_STATUS, 1, 2, bytes(21))
    bad = bytearray(good)
    bad[3] ^= 0x10
    frames = dec.feed(b"\x11" * 200 + b"\x00" + bytes(bad) + good[:5])
    frames += dec.feed(good[5:] + b"\x00\x00")
    assert [(f.type, f.seq, f.ack) for f in frames] == [(p.MSG_STATUS, 1, 2)]
    assert (dec.resyncs, dec.crc_errors) == (1, 1)
    assert p.cobs_decode(p.cobs_encode(bytes(range(256)) * 2)) == bytes(range(256)) * 2
    assert p.crc16(b"123456789") == 0x29B1


def test_hung_mcu_is_reset_by_the_watchdog(build):
    with SimAVR(build / "robot_test.elf", build / "sim_harness") as sim, Link(sim.pty, **SLOW) as link:
        assert not link.hello.reset_cause & 0x08
        link.arm()
        link.set_motors(0.5, 0.5)
        assert sim.wait_value("PWM", "D6", 0.5)
        mark = sim.mark()
        hang = sim.snapshot()[-1].cycle
        link.write_raw(p.encode_frame(0x7F, 1, 0))          # test build: the main loop hangs
        reset = sim.wait_for(lambda e: e.kind == "RESET", since=mark)
        assert reset is not None, "watchdog did not reset the MCU"
        assert 0.2 < (reset.cycle - hang) / F_CPU < 0.4     # WDTO_250MS (its RC oscillator is +-)
        assert sim.wait_value("PWM", "D6", 0, since=mark)
        deadline = time.monotonic() + 5
        while link.armed and time.monotonic() < deadline:   # the boot HELLO tells the host
            time.sleep(0.02)
        assert not link.armed and link.fault == "mcu reset"
        assert link.hello.reset_cause & 0x08 and link.hello.flags & p.FLAG_WATCHDOG_RESET
        link.arm()                                          # and it works again after ARM
        link.set_motors(0.25, 0.25)
        assert sim.wait_value("PWM", "D6", 64 / 256, since=mark)


def test_unacked_actions_are_retried_with_the_same_seq_and_run_once(sim):
    # a first ACK timeout (1 ms) below the wire time of request + ACK at 115200 baud (2 ms, and the
    # harness never runs faster than real time): every action is resent at least once (backoff
    # 1, 2, 4 ... ms)
    with Link(sim.pty, ack_timeout=0.001, retries=14) as link:
        before = link.heartbeat().actions
        mark = sim.mark()
        for i in range(20):
            link.digital_write(13, i % 2 == 0)
        st = link.heartbeat()
        edges = [e for e in sim.snapshot()[mark:] if e.kind == "PIN" and e.pin == "D13"]
        assert link.counters()["retries"] >= 20
        assert len(edges) == 20 and st.actions - before == 20   # each ran exactly once

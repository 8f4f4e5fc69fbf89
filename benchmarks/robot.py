"""Robot link benchmark: our firmware under simavr (real time, 115200 baud UART), host = Link.

    python benchmarks/robot.py [--actions 300] [--failsafe-runs 15] [--flood 400]

Measures
- action round trip host -> MCU -> ACK (DIGITAL_WRITE) and HEARTBEAT -> STATUS, wall clock
  (median / p90 / p99), next to the time the same bytes need on a 115200-baud wire (10 bits/byte),
  and the MCU-side turnaround in emulated time (request delimiter in -> reply delimiter out);
- frames/s: sequential request/reply, and a pipelined flood of setpoint frames (answered frames
  per emulated second, and what the MCU dropped: it answers every setpoint with a STATUS, so the
  reply direction saturates first);
- failsafe reaction time: a host process drives the motors and is SIGKILLed at a random moment;
  time from the last host frame reaching the MCU to both motors at 0 %, in emulated time.
Prints a markdown table (paste into BENCHMARKS.md).

Firmata: not run. Debian's arduino-core-avr ships no Firmata library or StandardFirmata sketch,
pyfirmata2 ships no firmware, and nothing else this project may install provides it.
"""
from __future__ import annotations

import argparse
import random
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from enigma_edge.robot import protocol as p
from enigma_edge.robot.link import Link
from enigma_edge.robot.sim import F_CPU, SimAVR, build_firmware

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
BAUD = 115200


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def wire_ms(nbytes: int) -> float:
    return nbytes * 10 / BAUD * 1000


def turnarounds(events, since, n):
    """Emulated ms from each RX0 to the next TX0 (the reply's end)."""
    out, rx = [], None
    for e in events[since:]:
        if e.kind == "RX0":
            rx = e.cycle
        elif e.kind == "TX0" and rx is not None:
            out.append((e.cycle - rx) / F_CPU * 1000)
            rx = None
    return out[-n:]


def bench_rtt(sim, link, n):
    rows = {}
    req = p.encode_frame(p.MSG_DIGITAL_WRITE, 1, 0, bytes((13, 1)))
    ack = p.encode_frame(p.MSG_ACK, 1, 1, bytes(3))
    mark = sim.mark()
    t = []
    for i in range(n):
        t0 = time.perf_counter()
        link.digital_write(13, i % 2 == 0)
        t.append((time.perf_counter() - t0) * 1000)
    emu = turnarounds(sim.snapshot(), mark, n)
    rows["DIGITAL_WRITE -> ACK"] = (t, wire_ms(len(req) + len(ack)), emu)
    req = p.encode_frame(p.MSG_HEARTBEAT, 1, 0)
    st = p.encode_frame(p.MSG_STATUS, 1, 1, bytes(21))
    mark = sim.mark()
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        link.heartbeat()
        t.append((time.perf_counter() - t0) * 1000)
    emu = turnarounds(sim.snapshot(), mark, n)
    rows["HEARTBEAT -> STATUS"] = (t, wire_ms(len(req) + len(st)), emu)
    return rows


def bench_flood(sim, link, n):
    """n HEARTBEATs written at once: every one must be accepted (no CRC error, no resync); the
    MCU answers as many as fit on the wire and counts the STATUS replies it had to skip."""
    before = link.heartbeat()
    c0 = link.counters()
    mark = sim.mark()
    link.write_raw(b"".join(p.encode_frame(p.MSG_HEARTBEAT, i, 0) for i in range(n)))
    # wait (in emulated terms) until every frame reached the MCU: a loaded machine runs simavr
    # slower than real time, so no wall-clock sleep would be right
    count = [0]

    def delivered(e):
        count[0] += e.kind == "RX0"
        return count[0] >= n

    if sim.wait_for(delivered, 120, since=mark) is None:
        raise RuntimeError(f"only {count[0]} of {n} flood frames reached the MCU")
    time.sleep(0.3)
    after = link.heartbeat()
    ev = sim.snapshot()[mark:]
    rx = [e.cycle for e in ev if e.kind == "RX0"]
    tx = [e.cycle for e in ev if e.kind == "TX0"]
    c1 = link.counters()
    own = c1["frames_tx"] - c0["frames_tx"] - n        # the link's own frames meanwhile
    burst = [tx[0]]                                     # replies back to back, up to the first pause
    for cyc in tx[1:]:
        if cyc - burst[-1] > F_CPU // 50:
            break
        burst.append(cyc)
    return dict(sent=n, accepted=after.frames_ok - before.frames_ok - own,
                replies=len(burst), reply_span_s=(burst[-1] - rx[0]) / F_CPU,
                dropped=after.tx_dropped - before.tx_dropped,
                resyncs=after.resyncs - before.resyncs, crc=after.crc_errors - before.crc_errors,
                frame_bytes=len(p.encode_frame(p.MSG_HEARTBEAT, 0, 0)),
                reply_bytes=len(p.encode_frame(p.MSG_STATUS, 0, 0, bytes(21))))


HOST = """
import sys, time
from enigma_edge.robot.link import Link
link = Link(sys.argv[1], ack_timeout=1.0); link.open(); link.arm(); link.set_motors(0.7, 0.7)
print("driving", flush=True)
time.sleep(60)
"""


def bench_failsafe(sim, runs, rng):
    quiet = []
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(runs):
            host = subprocess.Popen([sys.executable, "-c", HOST, sim.pty], cwd=cwd, stdout=subprocess.PIPE, text=True)
            assert host.stdout.readline().strip() == "driving"
            if not sim.wait_value("PWM", "D6", 179 / 256):
                raise RuntimeError("motors did not start")
            time.sleep(0.1 + rng.random() * 0.2)
            mark = sim.mark()
            host.send_signal(signal.SIGKILL)
            host.wait()
            host.stdout.close()
            stop = sim.wait_value("PWM", "D6", 0, since=mark)
            stop2 = sim.wait_value("PWM", "D5", 0, since=mark)
            if stop is None or stop2 is None:
                raise RuntimeError("failsafe did not stop the motors")
            ev = sim.snapshot()
            last = max(e.cycle for e in ev if e.kind == "RX0" and e.cycle <= stop.cycle)
            quiet.append((max(stop.cycle, stop2.cycle) - last) / F_CPU * 1000)
    return quiet


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--actions", type=int, default=300)
    ap.add_argument("--failsafe-runs", type=int, default=15)
    ap.add_argument("--flood", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    build = build_firmware(FIRMWARE)
    rng = random.Random(args.seed)
    with SimAVR(build / "robot.elf", build / "sim_harness") as sim:
        with Link(sim.pty, ack_timeout=1.0, retries=6) as link:
            link.heartbeat()
            rtt = bench_rtt(sim, link, args.actions)
            flood = bench_flood(sim, link, args.flood)
            counters = link.counters()
        quiet = bench_failsafe(sim, args.failsafe_runs, rng)

    print("| round trip (n=%d) | wall median ms | p90 | p99 | wire time ms (115200 8N1) | median / wire | MCU turnaround, emulated ms (median) | sequential frames/s |" % args.actions)
    print("|---|---|---|---|---|---|---|---|")
    for name, (t, wire, emu) in rtt.items():
        med = statistics.median(t)
        print(f"| {name} | {med:.2f} | {pct(t, 90):.2f} | {pct(t, 99):.2f} | {wire:.2f} | {med / wire:.2f}x "
              f"| {statistics.median(emu):.2f} | {1000 / med:.0f} |")
    print()
    f = flood
    print(f"Pipelined flood: {f['sent']} HEARTBEAT frames ({f['frame_bytes']} B) written at once: "
          f"{f['accepted']} accepted by the MCU, CRC errors {f['crc']}, resyncs {f['resyncs']}; "
          f"{f['replies']} STATUS replies ({f['reply_bytes']} B) = **{f['replies'] / f['reply_span_s']:.0f} "
          f"replies/s** (wire limit {BAUD / 10 / f['reply_bytes']:.0f}/s), {f['dropped']} skipped by the MCU "
          f"because its transmit ring was full (setpoint/heartbeat replies are droppable, ACKs are not).")
    print()
    print(f"| failsafe (500 ms), host SIGKILLed, n={len(quiet)} | min | median | p90 | max |")
    print("|---|---|---|---|---|")
    print(f"| last host frame at MCU -> both motors 0 %, emulated ms | {min(quiet):.2f} | "
          f"{statistics.median(quiet):.2f} | {pct(quiet, 90):.2f} | {max(quiet):.2f} |")
    print()
    print(f"Host counters during the RTT/flood runs: {counters}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

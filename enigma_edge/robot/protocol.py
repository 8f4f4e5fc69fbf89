"""The robot link's wire format, host side: the same schema as ``firmware/protocol.h``.

Frame (both directions)::

    COBS( version | type | seq | ack | len | payload[len] | crc16 big-endian ) 0x00

CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0) over version..payload;
payload <= 64 bytes, fields little-endian. The schema hash is FNV-1a 32 over ``NAME=VALUE;`` for
every entry of the header's ``EE_SCHEMA`` table, in order; the firmware sends it in HELLO and
the host refuses to arm on a mismatch. ``SCHEMA`` below must equal the header's table: a test
parses the header (:func:`schema_from_header`) and compares.

>>> from enigma_edge.robot import protocol as p
>>> hex(p.crc16(b"123456789"))
'0x29b1'
>>> wire = p.encode_frame(p.MSG_ARM, seq=7, ack=0)
>>> dec = p.FrameDecoder()
>>> [(f.type, f.seq) for f in dec.feed(wire)] == [(p.MSG_ARM, 7)]
True
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

# (name, value as written in protocol.h) -- order matters for the hash
SCHEMA_NUM: tuple[tuple[str, str], ...] = (
    ("PROTO_VERSION", "1"), ("MAX_PAYLOAD", "64"), ("HEADER_LEN", "5"), ("CRC_LEN", "2"),
    ("MSG_HELLO", "0x01"), ("MSG_ACK", "0x02"), ("MSG_STATUS", "0x03"), ("MSG_STATE", "0x04"),
    ("MSG_SET_MOTORS", "0x10"), ("MSG_SET_SERVO", "0x11"), ("MSG_HEARTBEAT", "0x12"),
    ("MSG_DIGITAL_WRITE", "0x20"), ("MSG_READ", "0x21"), ("MSG_STOP", "0x22"), ("MSG_ARM", "0x23"),
    ("MSG_DISARM", "0x24"), ("MSG_CONFIG", "0x25"), ("MSG_HELLO_REQ", "0x26"),
    ("ACK_OK", "0"), ("ACK_DUPLICATE", "1"), ("ACK_BAD_LENGTH", "2"), ("ACK_BAD_PIN", "3"),
    ("ACK_UNKNOWN_TYPE", "4"),
    ("FLAG_ARMED", "0x01"), ("FLAG_FAULT_LINK", "0x02"), ("FLAG_WATCHDOG_RESET", "0x04"),
    ("MOTOR_MAX", "1000"), ("SERVO_MIN_DEG", "0"), ("SERVO_MAX_DEG", "180"),
    ("SERVO_MIN_US", "1000"), ("SERVO_MAX_US", "2000"),
    ("FAILSAFE_MIN_MS", "50"), ("FAILSAFE_MAX_MS", "5000"),
    ("PIN_MOTOR_LEFT_PWM", "6"), ("PIN_MOTOR_LEFT_DIR", "7"),
    ("PIN_MOTOR_RIGHT_PWM", "5"), ("PIN_MOTOR_RIGHT_DIR", "4"), ("PIN_SERVO", "9"),
)
SCHEMA_TEXT: tuple[tuple[str, str], ...] = (
    ("CRC", "CCITT_FALSE"), ("WRITABLE_PINS", "8_12_13"),
    ("LAYOUT_HELLO", "BBBIHBBB"), ("LAYOUT_ACK", "BBB"), ("LAYOUT_STATUS", "BhhBHHHHBIH"),
    ("LAYOUT_STATE", "BBBHHHHHH"), ("LAYOUT_SET_MOTORS", "hh"), ("LAYOUT_SET_SERVO", "h"),
    ("LAYOUT_DIGITAL_WRITE", "BB"), ("LAYOUT_CONFIG", "H"),
)
SCHEMA = SCHEMA_NUM + SCHEMA_TEXT

_C = {name: int(value, 0) for name, value in SCHEMA_NUM}
_T = dict(SCHEMA_TEXT)
PROTO_VERSION = _C["PROTO_VERSION"]
MAX_PAYLOAD = _C["MAX_PAYLOAD"]
HEADER_LEN = _C["HEADER_LEN"]
CRC_LEN = _C["CRC_LEN"]
MAX_FRAME = HEADER_LEN + MAX_PAYLOAD + CRC_LEN            # 71 decoded bytes
MAX_ENCODED = MAX_FRAME + 1 + MAX_FRAME // 254             # 72 COBS bytes, without the 0x00
MSG_HELLO, MSG_ACK, MSG_STATUS, MSG_STATE = (_C[n] for n in ("MSG_HELLO", "MSG_ACK", "MSG_STATUS", "MSG_STATE"))
MSG_SET_MOTORS, MSG_SET_SERVO, MSG_HEARTBEAT = _C["MSG_SET_MOTORS"], _C["MSG_SET_SERVO"], _C["MSG_HEARTBEAT"]
MSG_DIGITAL_WRITE, MSG_READ, MSG_STOP = _C["MSG_DIGITAL_WRITE"], _C["MSG_READ"], _C["MSG_STOP"]
MSG_ARM, MSG_DISARM, MSG_CONFIG, MSG_HELLO_REQ = _C["MSG_ARM"], _C["MSG_DISARM"], _C["MSG_CONFIG"], _C["MSG_HELLO_REQ"]
ACK_OK, ACK_DUPLICATE, ACK_BAD_LENGTH = _C["ACK_OK"], _C["ACK_DUPLICATE"], _C["ACK_BAD_LENGTH"]
ACK_BAD_PIN, ACK_UNKNOWN_TYPE = _C["ACK_BAD_PIN"], _C["ACK_UNKNOWN_TYPE"]
FLAG_ARMED, FLAG_FAULT_LINK, FLAG_WATCHDOG_RESET = _C["FLAG_ARMED"], _C["FLAG_FAULT_LINK"], _C["FLAG_WATCHDOG_RESET"]
MOTOR_MAX = _C["MOTOR_MAX"]
SERVO_MIN_DEG, SERVO_MAX_DEG = _C["SERVO_MIN_DEG"], _C["SERVO_MAX_DEG"]
FAILSAFE_MIN_MS, FAILSAFE_MAX_MS = _C["FAILSAFE_MIN_MS"], _C["FAILSAFE_MAX_MS"]
WRITABLE_PINS = tuple(int(p) for p in _T["WRITABLE_PINS"].split("_"))
LAYOUT = {name[len("LAYOUT_"):]: "<" + v for name, v in SCHEMA_TEXT if name.startswith("LAYOUT_")}
ACK_NAMES = {_C[n]: n for n, _ in SCHEMA_NUM if n.startswith("ACK_")}
MSG_NAMES = {_C[n]: n for n, _ in SCHEMA_NUM if n.startswith("MSG_")}


def schema_hash(schema=SCHEMA) -> int:
    """FNV-1a 32 over ``NAME=VALUE;`` of each entry, exactly as the firmware computes it."""
    h = 2166136261
    for byte in "".join(f"{n}={v};" for n, v in schema).encode("ascii"):
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


SCHEMA_HASH = schema_hash()

_ENTRY = re.compile(r"X\(\s*(\w+)\s*,\s*(\w+)\s*\)")


def schema_from_header(text: str, *, skew: bool = False) -> tuple[tuple[str, str], ...]:
    """Parse ``EE_SCHEMA_NUM`` + ``EE_SCHEMA_TEXT`` (+ the SKEW entry) out of protocol.h's text."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)

    def table(macro: str):
        m = re.search(r"#define\s+" + macro + r"\(X\)((?:[^\n]*\\\n)*[^\n]*)", text)
        if not m:
            raise ValueError(f"protocol.h: no {macro}(X) table")
        return tuple(_ENTRY.findall(m.group(1)))

    entries = table("EE_SCHEMA_NUM") + table("EE_SCHEMA_TEXT")
    if skew:
        m = re.search(r"#ifdef EE_SCHEMA_SKEW\s*#define EE_SCHEMA\(X\)[^\n]*?((?:X\(\w+,\s*\w+\)\s*)+)\n", text)
        entries += tuple(_ENTRY.findall(m.group(1))) if m else ()
    return entries


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        i += 1
        if code == 0 or i + code - 1 > len(data):
            raise ValueError("bad COBS block")
        out += data[i:i + code - 1]
        i += code - 1
        if code < 255 and i < len(data):
            out.append(0)
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    ack: int
    payload: bytes

    def unpack(self) -> tuple:
        """Payload fields by the schema's layout for this type (HELLO, ACK, STATUS, STATE)."""
        layout = LAYOUT[MSG_NAMES[self.type][len("MSG_"):]]
        return struct.unpack(layout, self.payload)


def encode_frame(type: int, seq: int, ack: int, payload: bytes = b"", *, version: int = PROTO_VERSION,
                 check_length: bool = True) -> bytes:
    """One frame on the wire, delimiter included. ``check_length=False`` lets tests send oversize."""
    if check_length and len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte maximum")
    body = bytes((version, type & 0xFF, seq & 0xFF, ack & 0xFF, len(payload) & 0xFF)) + payload
    return cobs_encode(body + crc16(body).to_bytes(2, "big")) + b"\x00"


class FrameDecoder:
    """Bytes in, valid frames out. Counts ``crc_errors`` (bad COBS, CRC, version or length) and
    ``resyncs`` (a run longer than any valid frame, dropped up to the next 0x00)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False
        self.crc_errors = 0
        self.resyncs = 0
        self.frames = 0

    def reset(self) -> None:
        self._buf.clear()
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame]:
        frames = []
        parts = bytes(data).split(b"\x00")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if not self._overflow:
                self._buf += part
                if len(self._buf) > MAX_ENCODED:
                    self._overflow = True
                    self._buf.clear()
            if last:
                break
            # a delimiter
            if self._overflow:
                self.resyncs += 1
            elif self._buf:
                frame = self._decode(bytes(self._buf))
                if frame is not None:
                    frames.append(frame)
            self._buf.clear()
            self._overflow = False
        return frames

    def _decode(self, enc: bytes) -> Frame | None:
        try:
            raw = cobs_decode(enc)
        except ValueError:
            self.crc_errors += 1
            return None
        if len(raw) < HEADER_LEN + CRC_LEN or crc16(raw[:-2]) != int.from_bytes(raw[-2:], "big"):
            self.crc_errors += 1
            return None
        version, type_, seq, ack, length = raw[:HEADER_LEN]
        if version != PROTO_VERSION or length != len(raw) - HEADER_LEN - CRC_LEN:
            self.crc_errors += 1
            return None
        self.frames += 1
        return Frame(type_, seq, ack, raw[HEADER_LEN:-CRC_LEN])

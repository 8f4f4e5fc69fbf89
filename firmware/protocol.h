/* enigma-edge robot link protocol: the ONE place its constants live.
 *
 * Wire format (both directions):
 *   COBS( version | type | seq | ack | len | payload[len] | crc_hi | crc_lo ) 0x00
 *   - len <= EE_MAX_PAYLOAD; CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection,
 *     xorout 0; check("123456789") = 0x29B1) over version..payload, sent big-endian.
 *   - host -> MCU: seq = frame counter for setpoints/heartbeats; for discrete actions seq is the
 *     ACTION sequence (incremented per new action, reused by retries): the MCU executes an action
 *     once and answers a repeat of the last action seq with EE_ACK_DUPLICATE. ack = last MCU seq seen.
 *   - MCU -> host: seq = MCU frame counter, ack = seq of the host frame being answered.
 *   - all multi-byte payload fields are little-endian.
 *
 * The schema hash: FNV-1a 32-bit over the string formed by EE_SCHEMA(X) entries as
 * "NAME=VALUE;" (value as written, whitespace-free), e.g. "PROTO_VERSION=1;MAX_PAYLOAD=64;...".
 * The firmware computes it from the stringified table at boot; the Python side
 * (enigma_edge/robot/protocol.py) holds the same table and a test parses this file to prove
 * they are identical. Change a constant here -> the hash changes -> the host refuses to arm.
 */
#ifndef EE_PROTOCOL_H
#define EE_PROTOCOL_H

/* Numeric constants: each becomes an enum EE_<NAME> for C and a constant for Python. */
#define EE_SCHEMA_NUM(X) \
  X(PROTO_VERSION, 1) \
  X(MAX_PAYLOAD, 64) \
  X(HEADER_LEN, 5) \
  X(CRC_LEN, 2) \
  /* MCU -> host */ \
  X(MSG_HELLO, 0x01) \
  X(MSG_ACK, 0x02) \
  X(MSG_STATUS, 0x03) \
  X(MSG_STATE, 0x04) \
  /* host -> MCU: setpoints and heartbeat (idempotent, answered by STATUS) */ \
  X(MSG_SET_MOTORS, 0x10) \
  X(MSG_SET_SERVO, 0x11) \
  X(MSG_HEARTBEAT, 0x12) \
  /* host -> MCU: discrete actions (acked, deduplicated by seq) */ \
  X(MSG_DIGITAL_WRITE, 0x20) \
  X(MSG_READ, 0x21) \
  X(MSG_STOP, 0x22) \
  X(MSG_ARM, 0x23) \
  X(MSG_DISARM, 0x24) \
  X(MSG_CONFIG, 0x25) \
  X(MSG_HELLO_REQ, 0x26) \
  /* ACK codes */ \
  X(ACK_OK, 0) \
  X(ACK_DUPLICATE, 1) \
  X(ACK_BAD_LENGTH, 2) \
  X(ACK_BAD_PIN, 3) \
  X(ACK_UNKNOWN_TYPE, 4) \
  /* STATUS / HELLO flags */ \
  X(FLAG_ARMED, 0x01) \
  X(FLAG_FAULT_LINK, 0x02) \
  X(FLAG_WATCHDOG_RESET, 0x04) \
  /* limits, clamped on the MCU */ \
  X(MOTOR_MAX, 1000) \
  X(SERVO_MIN_DEG, 0) \
  X(SERVO_MAX_DEG, 180) \
  X(SERVO_MIN_US, 1000) \
  X(SERVO_MAX_US, 2000) \
  X(FAILSAFE_MIN_MS, 50) \
  X(FAILSAFE_MAX_MS, 5000) \
  /* Uno pins (Arduino numbering) */ \
  X(PIN_MOTOR_LEFT_PWM, 6) \
  X(PIN_MOTOR_LEFT_DIR, 7) \
  X(PIN_MOTOR_RIGHT_PWM, 5) \
  X(PIN_MOTOR_RIGHT_DIR, 4) \
  X(PIN_SERVO, 9)

/* Descriptive entries (hashed, not numbers): CRC variant, writable pins, payload layouts as
 * Python struct letters (little-endian, '<' implied). */
#define EE_SCHEMA_TEXT(X) \
  X(CRC, CCITT_FALSE) \
  X(WRITABLE_PINS, 8_12_13) \
  X(LAYOUT_HELLO, BBBIHBBB) \
  X(LAYOUT_ACK, BBB) \
  X(LAYOUT_STATUS, BhhBHHHHBIH) \
  X(LAYOUT_STATE, BBBHHHHHH) \
  X(LAYOUT_SET_MOTORS, hh) \
  X(LAYOUT_SET_SERVO, h) \
  X(LAYOUT_DIGITAL_WRITE, BB) \
  X(LAYOUT_CONFIG, H)

/* A firmware built with -DEE_SCHEMA_SKEW has a different schema (used by the mismatch test). */
#ifdef EE_SCHEMA_SKEW
#define EE_SCHEMA(X) EE_SCHEMA_NUM(X) EE_SCHEMA_TEXT(X) X(SKEW, 1)
#else
#define EE_SCHEMA(X) EE_SCHEMA_NUM(X) EE_SCHEMA_TEXT(X)
#endif

#define EE_X_ENUM(name, value) EE_##name = value,
enum { EE_SCHEMA_NUM(EE_X_ENUM) EE_SCHEMA_NUM_END_ };
#undef EE_X_ENUM

enum {
  EE_MAX_FRAME = EE_HEADER_LEN + EE_MAX_PAYLOAD + EE_CRC_LEN,       /* 71 decoded bytes */
  EE_MAX_ENCODED = EE_MAX_FRAME + 1 + EE_MAX_FRAME / 254,  /* 72 COBS bytes, without the 0x00 */
};

#endif /* EE_PROTOCOL_H */

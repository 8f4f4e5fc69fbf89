/* enigma-edge robot firmware for the Arduino Uno (ATmega328P, 16 MHz), plain avr-libc.
 *
 * Speaks the framed link of protocol.h over the UART at 115200 baud:
 *   - HELLO after reset (and on HELLO_REQ): firmware version, protocol version, schema hash,
 *     failsafe time, reset cause, flags, last executed action seq.
 *   - setpoints (SET_MOTORS, SET_SERVO) are idempotent and answered with STATUS; HEARTBEAT too.
 *   - discrete actions (DIGITAL_WRITE, STOP, ARM, DISARM, CONFIG) are acknowledged and executed
 *     once per action seq: a repeat of the last seq is answered ACK_DUPLICATE, not re-run.
 *   - any valid frame is a heartbeat. While armed, no valid frame for failsafe_ms (default 500,
 *     -DFAILSAFE_MS=..., or CONFIG at run time) -> both motors stop and FAULT_LINK is latched;
 *     only an explicit ARM clears it (setpoints are ignored until then).
 *   - limits are clamped here, whatever the host sends: motors +-MOTOR_MAX, servo 0..180 deg,
 *     failsafe FAILSAFE_MIN_MS..FAILSAFE_MAX_MS.
 *   - the AVR hardware watchdog (250 ms) resets a hung MCU; HELLO then reports it.
 *
 * Pins: left motor PWM D6 (OC0A) + DIR D7, right motor PWM D5 (OC0B) + DIR D4 (976.6 Hz fast
 * PWM, the Arduino default), servo D9 (OC1A, 50 Hz, 1000-2000 us), writable pins D8, D12, D13.
 * Timer0 overflow (every 1.024 ms) is the clock.
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/pgmspace.h>
#include <avr/wdt.h>
#include <stdint.h>
#include <string.h>
#include <util/atomic.h>
#include <util/crc16.h>

#include "protocol.h"

#define FW_MAJOR 1
#define FW_MINOR 0
#ifndef FAILSAFE_MS
#define FAILSAFE_MS 500
#endif

/* ---- reset cause: read MCUSR before anything else, stop a running watchdog ---- */
static uint8_t reset_cause __attribute__((section(".noinit")));
void early_init(void) __attribute__((naked, used, section(".init3")));
void early_init(void) {
  reset_cause = MCUSR;
  MCUSR = 0;
  wdt_disable();
}

/* ---- clock ---- */
static volatile uint32_t ticks; /* timer0 overflows, 1.024 ms each */
ISR(TIMER0_OVF_vect) { ticks++; }
static uint32_t now_ticks(void) {
  uint32_t t;
  ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { t = ticks; }
  return t;
}

/* ---- UART: interrupt-driven receive ring, polled transmit ---- */
#define RX_RING 128
static volatile uint8_t rx_ring[RX_RING];
static volatile uint8_t rx_head, rx_tail;
static volatile uint8_t rx_dropped; /* ring overflow: the frame in progress is lost */
ISR(USART_RX_vect) {
  uint8_t b = UDR0;
  uint8_t next = (uint8_t)((rx_head + 1) % RX_RING);
  if (next == rx_tail) { rx_dropped = 1; return; }
  rx_ring[rx_head] = b;
  rx_head = next;
}
static void uart_init(void) {
  UCSR0A = _BV(U2X0);
  UBRR0 = 16; /* 115200 baud at 16 MHz with U2X (117647, +2.1 %) */
  UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
  UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);
}
/* transmit ring drained by the UDRE interrupt: the main loop never waits for the wire unless
 * the ring is full, so received bytes are consumed (and the failsafe clock stamped) on time */
static volatile uint8_t tx_ring[256];
static volatile uint8_t tx_head, tx_tail; /* uint8_t indices wrap at 256 by themselves */
ISR(USART_UDRE_vect) {
  if (tx_tail == tx_head) { UCSR0B &= (uint8_t)~_BV(UDRIE0); return; }
  UDR0 = tx_ring[tx_tail++];
}
static uint8_t tx_free(void) { return (uint8_t)(tx_tail - tx_head - 1); }
static void uart_put(uint8_t b) {
  while (tx_free() == 0) wdt_reset(); /* drains at one byte per ~87 us */
  tx_ring[tx_head] = b;
  tx_head++;
  UCSR0B |= _BV(UDRIE0);
}

/* ---- state ---- */
static uint16_t failsafe_ms = FAILSAFE_MS;
static uint8_t armed, fault_link;
static int16_t motor_left, motor_right;
static int16_t servo_deg = -1; /* -1: servo output not driven yet */
static uint16_t crc_errors, resyncs, frames_ok, actions, tx_dropped;
static uint8_t last_action_seq, last_action_type, last_action_valid;
static uint32_t last_rx_ticks;
static uint8_t tx_seq;
static uint32_t schema_hash;

#define X_STR(name, value) #name "=" #value ";"
static const char schema_text[] PROGMEM = EE_SCHEMA(X_STR);
static uint32_t fnv1a_progmem(const char *p) {
  uint32_t h = 2166136261UL;
  for (char c; (c = (char)pgm_read_byte(p)) != 0; p++) { h ^= (uint8_t)c; h *= 16777619UL; }
  return h;
}

/* ---- CRC-16/CCITT-FALSE: _crc_xmodem_update is poly 0x1021 MSB-first; init 0xFFFF ---- */
static uint16_t crc16(const uint8_t *p, uint8_t n) {
  uint16_t c = 0xFFFF;
  while (n--) c = _crc_xmodem_update(c, *p++);
  return c;
}

/* ---- frames ---- */
/* droppable: a STATUS answering a setpoint/heartbeat is skipped (and counted) when the transmit
 * ring has no room, so a host sending faster than the replies fit on the wire cannot stall the
 * MCU; ACK, HELLO and STATE always go out. */
static void send_frame(uint8_t type, uint8_t ack, const uint8_t *payload, uint8_t len, uint8_t droppable) {
  uint8_t f[EE_MAX_FRAME];
  uint8_t out[EE_MAX_ENCODED + 1];
  f[0] = EE_PROTO_VERSION; f[1] = type; f[2] = tx_seq; f[3] = ack; f[4] = len;
  memcpy(f + EE_HEADER_LEN, payload, len);
  uint8_t n = EE_HEADER_LEN + len;
  uint16_t c = crc16(f, n);
  f[n++] = (uint8_t)(c >> 8); f[n++] = (uint8_t)c;
  /* COBS (frames are < 254 bytes: one code byte per zero-free run) */
  uint8_t o = 0, code_at = o++, code = 1;
  for (uint8_t i = 0; i < n; i++) {
    if (f[i] == 0) { out[code_at] = code; code_at = o++; code = 1; }
    else { out[o++] = f[i]; code++; }
  }
  out[code_at] = code;
  out[o++] = 0;
  if (droppable && tx_free() < o) { tx_dropped++; return; }
  tx_seq++;
  for (uint8_t i = 0; i < o; i++) uart_put(out[i]);
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }

static uint8_t flags(void) {
  return (armed ? EE_FLAG_ARMED : 0) | (fault_link ? EE_FLAG_FAULT_LINK : 0) |
         ((reset_cause & _BV(WDRF)) ? EE_FLAG_WATCHDOG_RESET : 0);
}

static void send_hello(uint8_t ack) { /* LAYOUT_HELLO BBBIHBBB */
  uint8_t p[12];
  p[0] = FW_MAJOR; p[1] = FW_MINOR; p[2] = EE_PROTO_VERSION;
  put32(p + 3, schema_hash); put16(p + 7, failsafe_ms);
  p[9] = reset_cause; p[10] = flags(); p[11] = last_action_seq;
  send_frame(EE_MSG_HELLO, ack, p, sizeof p, 0);
}

static void send_status(uint8_t ack) { /* LAYOUT_STATUS BhhBHHHHBIH */
  uint8_t p[21];
  p[0] = flags(); put16(p + 1, (uint16_t)motor_left); put16(p + 3, (uint16_t)motor_right);
  p[5] = (uint8_t)(servo_deg < 0 ? 0xFF : servo_deg);
  put16(p + 6, crc_errors); put16(p + 8, resyncs); put16(p + 10, frames_ok); put16(p + 12, actions);
  p[14] = last_action_seq;
  uint32_t t = now_ticks();
  put32(p + 15, t + (t * 3) / 125); /* ticks * 1.024 = ms */
  put16(p + 19, tx_dropped);
  send_frame(EE_MSG_STATUS, ack, p, sizeof p, 1);
}

static void send_ack(uint8_t seq, uint8_t type, uint8_t code) { /* LAYOUT_ACK BBB */
  uint8_t p[3] = {seq, type, code};
  send_frame(EE_MSG_ACK, seq, p, sizeof p, 0);
}

static uint16_t adc_read(uint8_t ch) {
  ADMUX = _BV(REFS0) | ch;
  ADCSRA |= _BV(ADSC);
  while (ADCSRA & _BV(ADSC)) {}
  return ADC;
}

static void send_state(uint8_t ack) { /* LAYOUT_STATE BBBHHHHHH */
  uint8_t p[15];
  p[0] = PIND; p[1] = PINB; p[2] = PINC;
  for (uint8_t ch = 0; ch < 6; ch++) put16(p + 3 + 2 * ch, adc_read(ch));
  send_frame(EE_MSG_STATE, ack, p, sizeof p, 0);
}

/* ---- actuators ---- */
static int16_t clamp16(int16_t v, int16_t lo, int16_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static void motor_apply(uint8_t right, int16_t v) {
  v = clamp16(v, -EE_MOTOR_MAX, EE_MOTOR_MAX);
  uint8_t duty = (uint8_t)(((uint32_t)(v < 0 ? -v : v) * 255UL) / EE_MOTOR_MAX);
  uint8_t dir_bit = right ? PD4 : PD7, pwm_bit = right ? PD5 : PD6;
  uint8_t com = right ? _BV(COM0B1) : _BV(COM0A1);
  if (v < 0) PORTD |= _BV(dir_bit); else PORTD &= (uint8_t)~_BV(dir_bit);
  if (duty == 0) { /* disconnect the compare output: a true 0 % (OCR=0 would leave a spike) */
    TCCR0A &= (uint8_t)~com;
    PORTD &= (uint8_t)~_BV(pwm_bit);
    if (right) OCR0B = 0; else OCR0A = 0;
  } else {
    if (right) OCR0B = duty; else OCR0A = duty;
    TCCR0A |= com;
  }
  if (right) motor_right = v; else motor_left = v;
}

static void motors_stop(void) { motor_apply(0, 0); motor_apply(1, 0); }

static void servo_apply(int16_t deg) {
  deg = clamp16(deg, EE_SERVO_MIN_DEG, EE_SERVO_MAX_DEG);
  uint16_t us = (uint16_t)(EE_SERVO_MIN_US +
                           ((uint32_t)deg * (EE_SERVO_MAX_US - EE_SERVO_MIN_US)) / EE_SERVO_MAX_DEG);
  OCR1A = us * 2; /* 0.5 us per count */
  TCCR1A |= _BV(COM1A1);
  servo_deg = deg;
}

static uint8_t writable_bit(uint8_t pin) { /* WRITABLE_PINS 8_12_13, all on port B */
  switch (pin) { case 8: return PB0; case 12: return PB4; case 13: return PB5; default: return 0xFF; }
}

/* ---- one valid frame ---- */
static void handle(const uint8_t *f, uint8_t len) {
  uint8_t type = f[1], seq = f[2];
  const uint8_t *p = f + EE_HEADER_LEN;
  last_rx_ticks = now_ticks(); /* any valid frame is a heartbeat */
  frames_ok++;
  switch (type) {
    case EE_MSG_SET_MOTORS:
      if (len != 4) { send_ack(seq, type, EE_ACK_BAD_LENGTH); return; }
      if (armed) {
        motor_apply(0, (int16_t)(p[0] | (p[1] << 8)));
        motor_apply(1, (int16_t)(p[2] | (p[3] << 8)));
      }
      send_status(seq);
      return;
    case EE_MSG_SET_SERVO:
      if (len != 2) { send_ack(seq, type, EE_ACK_BAD_LENGTH); return; }
      if (armed) servo_apply((int16_t)(p[0] | (p[1] << 8)));
      send_status(seq);
      return;
    case EE_MSG_HEARTBEAT: send_status(seq); return;
    case EE_MSG_HELLO_REQ: send_hello(seq); return;
    case EE_MSG_READ: send_state(seq); return; /* a query: safe to repeat, not deduplicated */
#ifdef EE_TEST_HOOKS
    case 0x7F: for (;;) {} /* test build only: hang, so the hardware watchdog must reset the MCU */
#endif
    default: break;
  }
  if (type < EE_MSG_DIGITAL_WRITE || type > EE_MSG_CONFIG) { send_ack(seq, type, EE_ACK_UNKNOWN_TYPE); return; }
  if (last_action_valid && seq == last_action_seq && type == last_action_type) {
    send_ack(seq, type, EE_ACK_DUPLICATE); /* a retry whose ACK was lost: do not run it twice */
    return;
  }
  uint8_t code = EE_ACK_OK;
  switch (type) {
    case EE_MSG_DIGITAL_WRITE: {
      if (len != 2) { code = EE_ACK_BAD_LENGTH; break; }
      uint8_t bit = writable_bit(p[0]);
      if (bit == 0xFF) { code = EE_ACK_BAD_PIN; break; }
      if (p[1]) PORTB |= _BV(bit); else PORTB &= (uint8_t)~_BV(bit);
      break;
    }
    case EE_MSG_STOP:
    case EE_MSG_DISARM:
      if (len != 0) { code = EE_ACK_BAD_LENGTH; break; }
      motors_stop();
      armed = 0;
      break;
    case EE_MSG_ARM:
      if (len != 0) { code = EE_ACK_BAD_LENGTH; break; }
      fault_link = 0;
      armed = 1;
      break;
    case EE_MSG_CONFIG: {
      if (len != 2) { code = EE_ACK_BAD_LENGTH; break; }
      int32_t ms = (uint16_t)(p[0] | (p[1] << 8));
      failsafe_ms = (uint16_t)(ms < EE_FAILSAFE_MIN_MS ? EE_FAILSAFE_MIN_MS
                               : ms > EE_FAILSAFE_MAX_MS ? EE_FAILSAFE_MAX_MS : ms);
      break;
    }
  }
  if (code == EE_ACK_OK) {
    last_action_seq = seq; last_action_type = type; last_action_valid = 1;
    actions++;
  }
  send_ack(seq, type, code);
}

/* ---- byte stream -> frames: COBS, 0x00 delimiter, resync on oversize ---- */
static uint8_t enc[EE_MAX_ENCODED];
static uint8_t enc_len, enc_overflow;

static void frame_end(void) {
  if (enc_overflow) { resyncs++; return; } /* longer than any valid frame: dropped at the delimiter */
  if (enc_len == 0) return;                 /* back-to-back delimiters */
  uint8_t f[EE_MAX_FRAME];
  uint8_t i = 0, n = 0;
  while (i < enc_len) {
    uint8_t code = enc[i++];
    for (uint8_t j = 1; j < code; j++) {
      if (i >= enc_len || n >= EE_MAX_FRAME) { crc_errors++; return; }
      f[n++] = enc[i++];
    }
    if (code < 0xFF && i < enc_len) {
      if (n >= EE_MAX_FRAME) { crc_errors++; return; }
      f[n++] = 0;
    }
  }
  if (n < EE_HEADER_LEN + EE_CRC_LEN) { crc_errors++; return; }
  uint16_t c = crc16(f, n - 2);
  if (c != (uint16_t)((f[n - 2] << 8) | f[n - 1])) { crc_errors++; return; }
  uint8_t len = f[4];
  if (f[0] != EE_PROTO_VERSION || len > EE_MAX_PAYLOAD || len != n - EE_HEADER_LEN - EE_CRC_LEN) {
    crc_errors++;
    return;
  }
  handle(f, len);
}

static void rx_byte(uint8_t b) {
  if (b == 0) {
    frame_end();
    enc_len = 0; enc_overflow = 0;
  } else if (enc_len < EE_MAX_ENCODED) {
    enc[enc_len++] = b;
  } else {
    enc_overflow = 1;
  }
}

static void io_init(void) {
  /* motors: PD4..PD7 outputs, low; timer0 fast PWM /64 (976.6 Hz), compare outputs off */
  DDRD |= _BV(PD4) | _BV(PD5) | _BV(PD6) | _BV(PD7);
  PORTD &= (uint8_t)~(_BV(PD4) | _BV(PD5) | _BV(PD6) | _BV(PD7));
  TCCR0A = _BV(WGM01) | _BV(WGM00);
  TCCR0B = _BV(CS01) | _BV(CS00);
  TIMSK0 = _BV(TOIE0);
  /* servo: PB1 (OC1A) output, timer1 mode 14 (ICR1 top), /8 -> 0.5 us, 20 ms period */
  DDRB |= _BV(PB1);
  TCCR1A = _BV(WGM11);
  TCCR1B = _BV(WGM13) | _BV(WGM12) | _BV(CS11);
  ICR1 = 39999;
  /* writable pins D8, D12, D13 */
  DDRB |= _BV(PB0) | _BV(PB4) | _BV(PB5);
  /* ADC: AVcc reference, /128 */
  ADCSRA = _BV(ADEN) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0);
}

int main(void) {
  io_init();
  uart_init();
  schema_hash = fnv1a_progmem(schema_text);
  wdt_enable(WDTO_250MS);
  sei();
  send_hello(0);
  for (;;) {
    wdt_reset();
    if (rx_dropped) { /* ring overflow: the frame in progress is corrupt, resync at next 0x00 */
      rx_dropped = 0;
      enc_overflow = 1;
    }
    while (rx_tail != rx_head) {
      uint8_t b = rx_ring[rx_tail];
      rx_tail = (uint8_t)((rx_tail + 1) % RX_RING);
      rx_byte(b);
    }
    if (armed) {
      uint32_t quiet = now_ticks() - last_rx_ticks;
      /* quiet * 1.024 ms >= failsafe_ms, without 32-bit overflow for long silences */
      if (quiet > 10000UL || quiet * 1024UL >= (uint32_t)failsafe_ms * 1000UL) {
        motors_stop();
        armed = 0;
        fault_link = 1; /* latched: only ARM clears it */
      }
    }
  }
}

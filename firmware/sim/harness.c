/* simavr harness for the robot firmware: runs the .elf on an emulated ATmega328P at 16 MHz,
 * bridges its UART0 to a pseudo-terminal and reports what the pins do.
 *
 *   build/sim_harness [--speed F] [--max-seconds S] firmware.elf
 *     --speed F        emulated seconds per wall second (default 1.0 = real time, so host timing
 *                      and firmware timeouts agree; 0 = unthrottled)
 *     --max-seconds S  stop after S emulated seconds (default: run until killed)
 *
 * stdout, one event per line, line-buffered; every line but the first starts with the emulated
 * cycle count (16 cycles = 1 us), so timing is measured in emulated time:
 *   PTY /dev/pts/N                 the pty to open
 *   T <cycle> PWM <pin> <duty>     motor PWM duty 0..1 changed (D6 left, D5 right)
 *   T <cycle> PIN <pin> <0|1>      digital output changed (D4, D7 motor direction; D8, D12, D13)
 *   T <cycle> SERVO <pin> <us>     servo pulse width changed (D9; 0 = output not driven)
 *   T <cycle> RX0                  a host 0x00 frame delimiter entered the MCU UART's receive FIFO
 *                                  (the firmware reads it at the byte rate, after the bytes before it)
 *   T <cycle> TX0                  the MCU sent a 0x00 frame delimiter (MCU -> host)
 *   T <cycle> RESET                the MCU reset (watchdog)
 *   T <cycle> EXIT <state>         the core stopped (crash, sleep forever, or --max-seconds)
 * Outputs are sampled, and host bytes moved into the UART, every 100 emulated microseconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "avr_ioport.h"
#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_elf.h"
#include "sim_irq.h"

/* ATmega328P data-space addresses */
enum { R_PORTB = 0x25, R_PORTD = 0x2B, R_TCCR0A = 0x44, R_OCR0A = 0x47, R_OCR0B = 0x48,
       R_TCCR1A = 0x80, R_OCR1AL = 0x88, R_OCR1AH = 0x89 };

static avr_t *avr;

typedef struct { const char *name; uint8_t reg, bit; int last; } pin_t;
static pin_t pins[] = {
  {"D4", R_PORTD, 4, -1}, {"D7", R_PORTD, 7, -1},
  {"D8", R_PORTB, 0, -1}, {"D12", R_PORTB, 4, -1}, {"D13", R_PORTB, 5, -1},
};
typedef struct { const char *name; uint8_t ocr, port, bit, com_mask; double last; } pwm_t;
static pwm_t pwms[] = {
  {"D6", R_OCR0A, R_PORTD, 6, 0x80, -1}, /* OC0A, COM0A1 */
  {"D5", R_OCR0B, R_PORTD, 5, 0x20, -1}, /* OC0B, COM0B1 */
};
static long servo_last = -1;

static double pwm_duty(const pwm_t *p) {
  if (avr->data[R_TCCR0A] & p->com_mask) /* fast PWM, non-inverting */
    return (avr->data[p->ocr] + 1) / 256.0;
  return (avr->data[p->port] >> p->bit) & 1 ? 1.0 : 0.0;
}

static void sample(void) {
  for (size_t i = 0; i < sizeof pins / sizeof *pins; i++) {
    int v = (avr->data[pins[i].reg] >> pins[i].bit) & 1;
    if (v != pins[i].last) {
      printf("T %llu PIN %s %d\n", (unsigned long long)avr->cycle, pins[i].name, v);
      pins[i].last = v;
    }
  }
  for (size_t i = 0; i < sizeof pwms / sizeof *pwms; i++) {
    double d = pwm_duty(&pwms[i]);
    if (d != pwms[i].last) {
      printf("T %llu PWM %s %.4f\n", (unsigned long long)avr->cycle, pwms[i].name, d);
      pwms[i].last = d;
    }
  }
  long us = 0;
  if (avr->data[R_TCCR1A] & 0x80) /* COM1A1: OC1A drives D9; 0.5 us per count */
    us = (avr->data[R_OCR1AL] | (avr->data[R_OCR1AH] << 8)) / 2;
  if (us != servo_last) {
    printf("T %llu SERVO D9 %ld\n", (unsigned long long)avr->cycle, us);
    servo_last = us;
  }
}

static void uart_in_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq; (void)param;
  if ((value & 0xFF) == 0) { sample(); printf("T %llu RX0\n", (unsigned long long)avr->cycle); }
}
static void uart_out_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq; (void)param;
  if ((value & 0xFF) == 0) printf("T %llu TX0\n", (unsigned long long)avr->cycle);
}

/* UART0 <-> pseudo-terminal bridge, run in the emulator's own thread (no locks, no races).
 * Not libsimavrparts' uart_pty: in simavr 1.6 its reader thread stops moving bytes that did not
 * fit its FIFO after a read (a select() timeout skips the transfer), and it keeps feeding the
 * UART after the UART's FIFO filled up (lost bytes, "RX buffer overrun"); host bursts of a few
 * hundred bytes froze the host -> MCU direction. Here host bytes go into the UART only while its
 * 64-entry FIFO has room; simavr's UART then hands them to the firmware at the baud rate. */
DEFINE_FIFO(uint16_t, uart_fifo);
static int pty_master = -1, pty_slave = -1;
static char pty_name[256];
static avr_uart_t *uart0;
static avr_irq_t *uart0_input;
static uint8_t host_buf[4096];
static size_t host_len, host_done;

static void bridge_out_hook(struct avr_irq_t *irq, uint32_t value, void *param) { /* MCU -> host */
  (void)irq; (void)param;
  uint8_t b = (uint8_t)value;
  for (int tries = 0; tries < 1000; tries++) { /* the host reads slower than we emulate: wait */
    ssize_t w = write(pty_master, &b, 1);
    if (w == 1 || (w < 0 && errno != EAGAIN && errno != EINTR)) return; /* EIO: no host, drop */
    usleep(100);
  }
}

static void bridge_poll(void) { /* host -> MCU */
  if (host_done == host_len) {
    ssize_t r = read(pty_master, host_buf, sizeof host_buf);
    if (r <= 0) return; /* EAGAIN, or EIO when no host has the port open */
    host_len = (size_t)r;
    host_done = 0;
  }
  while (host_done < host_len && !uart_fifo_isfull(&uart0->input))
    avr_raise_irq(uart0_input, host_buf[host_done++]);
}

static int bridge_init(void) {
  if (openpty(&pty_master, &pty_slave, pty_name, NULL, NULL) < 0) return -1;
  struct termios tio;
  tcgetattr(pty_slave, &tio);
  cfmakeraw(&tio);
  tcsetattr(pty_slave, TCSANOW, &tio);
  fcntl(pty_master, F_SETFL, fcntl(pty_master, F_GETFL) | O_NONBLOCK);
  /* pty_slave stays open: the pty outlives host reconnects, like a USB serial port's node */
  for (avr_io_t *io = avr->io_port; io; io = io->next)
    if (io->irq_ioctl_get == AVR_IOCTL_UART_GETIRQ('0')) uart0 = (avr_uart_t *)io;
  if (!uart0) return -1;
  uint32_t f = 0; /* no stdio echo of the binary stream */
  avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &f);
  f &= ~AVR_UART_FLAG_STDIO;
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &f);
  uart0_input = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), bridge_out_hook, NULL);
  return 0;
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_term(int sig) { (void)sig; fflush(stdout); _exit(0); }

int main(int argc, char **argv) {
  double speed = 1.0, max_seconds = 0;
  const char *elf = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--speed") && i + 1 < argc) speed = atof(argv[++i]);
    else if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc) max_seconds = atof(argv[++i]);
    else if (argv[i][0] != '-' && !elf) elf = argv[i];
    else { fprintf(stderr, "usage: %s [--speed F] [--max-seconds S] firmware.elf\n", argv[0]); return 2; }
  }
  if (!elf) { fprintf(stderr, "usage: %s [--speed F] [--max-seconds S] firmware.elf\n", argv[0]); return 2; }
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);

  elf_firmware_t fw;
  memset(&fw, 0, sizeof fw);
  if (elf_read_firmware(elf, &fw) != 0) { fprintf(stderr, "cannot read firmware %s\n", elf); return 1; }
  if (!fw.mmcu[0]) strcpy(fw.mmcu, "atmega328p"); /* no .mmcu section: it is an Uno */
  if (!fw.frequency) fw.frequency = 16000000;
  avr = avr_make_mcu_by_name(fw.mmcu);
  if (!avr) { fprintf(stderr, "unknown MCU %s\n", fw.mmcu); return 1; }
  avr_init(avr);
  avr_load_firmware(avr, &fw);
  avr->log = LOG_ERROR;

  if (bridge_init() != 0) { fprintf(stderr, "cannot set up the UART pty bridge\n"); return 1; }
  printf("PTY %s\n", pty_name);

  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT), uart_in_hook, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), uart_out_hook, NULL);

  const avr_cycle_count_t sample_every = fw.frequency / 10000;   /* 100 us */
  const avr_cycle_count_t throttle_every = fw.frequency / 1000;  /* 1 ms */
  avr_cycle_count_t next_sample = 0, next_throttle = 0, last_pc0 = 0;
  const avr_cycle_count_t max_cycles = (avr_cycle_count_t)(max_seconds * fw.frequency);
  double start = wall_now();
  sample();
  for (;;) {
    int state = avr_run(avr);
    if (state == cpu_Done || state == cpu_Crashed) {
      printf("T %llu EXIT %d\n", (unsigned long long)avr->cycle, state);
      break;
    }
    if (avr->pc == 0 && avr->cycle > last_pc0 + 100 && avr->cycle > 1000) { /* reset vector again */
      printf("T %llu RESET\n", (unsigned long long)avr->cycle);
      last_pc0 = avr->cycle;
    }
    if (avr->cycle >= next_sample) {
      sample();
      next_sample = avr->cycle + sample_every;
      bridge_poll();
    }
    if (avr->cycle >= next_throttle) {
      next_throttle = avr->cycle + throttle_every;
      if (max_cycles && avr->cycle >= max_cycles) {
        printf("T %llu EXIT max-seconds\n", (unsigned long long)avr->cycle);
        break;
      }
      if (speed > 0) {
        double ahead = start + (double)avr->cycle / fw.frequency / speed - wall_now();
        if (ahead > 0.0005) {
          struct timespec ts = {(time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9)};
          nanosleep(&ts, NULL);
        }
      }
    }
  }
  fflush(stdout);
  _exit(0);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * csv-tiny-guest: the tiny virtual machine that the csvfs cluster's tests
 * boot under QEMU (TCG or KVM) to show that a VM runs, and keeps running
 * across a live migration.
 *
 * It is a Multiboot (version 1) ELF32 kernel, booted with
 *   qemu-system-x86_64 -kernel csv-tiny-guest -append "dirty=16 tick=10"
 * on a pc or q35 machine with 64 MiB or more of RAM. It uses only COM1
 * (0x3f8), the 8259 PICs and the 8254 PIT, and runs in 32-bit protected
 * mode without paging.
 *
 * On COM1 it prints one line when it starts, with its parameters:
 *   csv-guest started mem=256MiB tick=10ms dirty=16MiB rate=0MiB/s
 * then one line per PIT tick, numbered from 1 and never reset:
 *   csv-guest tick 123
 * and, when it dirties memory, once a second of guest time, the rate:
 *   csv-guest dirty-rate 850MiB/s
 * A CPU exception prints "csv-guest fault VECTOR" and stops the CPU.
 *
 * Parameters (the Multiboot command line, QEMU's -append), all decimal:
 *   tick=MS    the tick period, 1 to 50 ms (default 10), timed by the PIT so
 *              that the rate does not depend on the speed of the CPU
 *   dirty=MiB  the size of the memory, from 4 MiB up, that the guest
 *              writes to over and over, one 32-bit word per 4 KiB page
 *              (default 0: the guest is idle and halts between ticks);
 *              capped at the memory there is
 *   rate=MiB/s at most this many MiB of pages dirtied per second of guest
 *              time (default 0: as fast as the CPU goes)
 * Each unknown parameter is reported after the first line, as
 *   csv-guest unknown NAME=VALUE
 *
 * The counter is the number of tick interrupts seen. A live migration
 * stops the guest's clock while the guest does not run, so the lines go on
 * from the next number on the target machine; a reboot would start again
 * at "started" and tick 1, which a test sees.
 */
#include <stdint.h>

#define COM1 0x3f8
#define PIC1 0x20
#define PIC2 0xa0
#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_HZ 1193182u

#define PAGE 4096u
#define MIB (1024u * 1024u)
#define DIRTY_BASE (4u * MIB)
#define DIRTY_BATCH 64u /* pages dirtied between two looks at the clock */

#define MB_INFO_MAGIC 0x2badb002u
#define MB_INFO_MEM (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower; /* KiB below 1 MiB */
	uint32_t mem_upper; /* KiB from 1 MiB up to the first hole */
	uint32_t boot_device;
	uint32_t cmdline; /* physical address of a NUL-terminated string */
};

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t zero;
	uint8_t type;
	uint16_t off_hi;
} __attribute__((packed));

struct idt_desc {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

struct params {
	uint32_t tick_ms, dirty_mib, rate_mib;
};

/* Incremented by irq_timer (boot.S) once per PIT interrupt. */
volatile uint32_t guest_ticks;

extern char irq_timer[], irq_spurious[], fault_stubs[];
void guest_main(uint32_t magic, const struct mb_info *mbi);
void guest_fault(uint32_t vector);

static struct idt_gate idt[256];

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* no UART interrupts */
	outb(COM1 + 3, 0x80); /* divisor latch */
	outb(COM1 + 0, 0x01); /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0x07); /* FIFOs on and cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
}

static void put_char(char c)
{
	while (!(inb(COM1 + 5) & 0x20)) /* until the transmit register is empty */
		;
	outb(COM1, (uint8_t)c);
}

static void put_str(const char *s)
{
	while (*s)
		put_char(*s++);
}

static void put_u32(uint32_t v)
{
	char buf[10];
	int n = 0;

	do {
		buf[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		put_char(buf[--n]);
}

void guest_fault(uint32_t vector)
{
	put_str("csv-guest fault ");
	put_u32(vector);
	put_char('\n');
}

static void idt_set(int vector, const void *handler)
{
	uint32_t a = (uint32_t)(uintptr_t)handler;

	idt[vector] = (struct idt_gate){
		.off_lo = (uint16_t)a,
		.sel = 0x08,
		.type = 0x8e, /* present, ring 0, 32-bit interrupt gate */
		.off_hi = (uint16_t)(a >> 16),
	};
}

static void idt_init(void)
{
	struct idt_desc d = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };

	for (int v = 0; v < 32; v++)
		idt_set(v, fault_stubs + 8 * v);
	for (int v = 32; v < 256; v++)
		idt_set(v, irq_spurious);
	idt_set(32, irq_timer);
	__asm__ volatile("lidt %0" : : "m"(d));
}

/* Both PICs to vectors 32-47, every line masked but IRQ 0. */
static void pic_init(void)
{
	outb(PIC1, 0x11);
	outb(PIC2, 0x11);
	outb(PIC1 + 1, 32);
	outb(PIC2 + 1, 40);
	outb(PIC1 + 1, 0x04); /* the slave is on IRQ 2 */
	outb(PIC2 + 1, 0x02);
	outb(PIC1 + 1, 0x01); /* 8086 mode */
	outb(PIC2 + 1, 0x01);
	outb(PIC1 + 1, 0xfe);
	outb(PIC2 + 1, 0xff);
}

/* PIT channel 0 as a rate generator, one interrupt every MS milliseconds. */
static void pit_init(uint32_t ms)
{
	uint32_t div = PIT_HZ * ms / 1000;

	outb(PIT_CMD, 0x34); /* channel 0, low then high byte, mode 2 */
	outb(PIT_CH0, (uint8_t)div);
	outb(PIT_CH0, (uint8_t)(div >> 8));
}

/* Parses "NAME=VALUE" at S (ending at a space or NUL) when NAME is KEY;
 * returns 1 and sets *RET then. */
static int param(const char *s, const char *key, uint32_t *ret)
{
	uint32_t v = 0;

	while (*key)
		if (*s++ != *key++)
			return 0;
	if (*s++ != '=')
		return 0;
	if (*s < '0' || *s > '9')
		return 0;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint32_t)(*s++ - '0');
	if (*s && *s != ' ')
		return 0;
	*ret = v;
	return 1;
}

/* The command line is the image's path, then the parameters. With REPORT,
 * prints a line for each parameter that is not known. */
static void parse_cmdline(const char *s, struct params *p, int report)
{
	int first = 1;

	while (*s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		if (!first && !param(s, "tick", &p->tick_ms) && !param(s, "dirty", &p->dirty_mib) &&
		    !param(s, "rate", &p->rate_mib) && report) {
			put_str("csv-guest unknown ");
			while (*s && *s != ' ')
				put_char(*s++);
			put_char('\n');
		}
		first = 0;
		while (*s && *s != ' ')
			s++;
	}
}

/* Dirties memory and prints the ticks, for ever. */
static void run(const struct params *p)
{
	const uint32_t pages = p->dirty_mib * (MIB / PAGE);
	const uint32_t per_second = (1000 + p->tick_ms / 2) / p->tick_ms; /* ticks */
	/* The pages that one tick allows under a rate; at most two ticks'
	 * worth are saved up. */
	const uint32_t per_tick = p->rate_mib * (MIB / PAGE) * p->tick_ms / 1000 + 1;
	uint32_t budget = 0, shown = 0, page = 0, word = 1, dirtied = 0;

	for (;;) {
		uint32_t now = guest_ticks;

		while (shown != now) {
			shown++;
			put_str("csv-guest tick ");
			put_u32(shown);
			put_char('\n');
			if (pages && shown % per_second == 0) {
				put_str("csv-guest dirty-rate ");
				put_u32(dirtied / (MIB / PAGE) * 1000 / (per_second * p->tick_ms));
				put_str("MiB/s\n");
				dirtied = 0;
			}
			if (p->rate_mib && budget < 2 * per_tick)
				budget += per_tick;
		}
		if (pages && (!p->rate_mib || budget)) {
			uint32_t n = DIRTY_BATCH;

			if (p->rate_mib && n > budget)
				n = budget;
			for (uint32_t i = 0; i < n; i++) {
				*(volatile uint32_t *)(uintptr_t)(DIRTY_BASE + page * PAGE) = word;
				if (++page == pages) {
					page = 0;
					word++;
				}
			}
			dirtied += n;
			if (p->rate_mib)
				budget -= n;
			continue;
		}
		/* Idle until the next tick. sti takes effect only after the
		 * next instruction, so a tick that comes between the test and
		 * hlt still ends the hlt. */
		__asm__ volatile("cli");
		if (guest_ticks == shown)
			__asm__ volatile("sti; hlt");
		else
			__asm__ volatile("sti");
	}
}

void guest_main(uint32_t magic, const struct mb_info *mbi)
{
	struct params p = { .tick_ms = 10, .dirty_mib = 0, .rate_mib = 0 };
	const char *cmdline = "";
	uint32_t mem_mib = 0, top_mib = 0;

	serial_init();
	if (magic != MB_INFO_MAGIC) {
		put_str("csv-guest not started by a Multiboot loader\n");
		return;
	}
	/* The firmware keeps the last few KiB of RAM: the size is counted in
	 * whole MiB upward, and only the MiB below that top are dirtied. */
	if (mbi->flags & MB_INFO_MEM) {
		mem_mib = 1 + (mbi->mem_upper + 1023) / 1024;
		top_mib = 1 + mbi->mem_upper / 1024;
	}
	if (mbi->flags & MB_INFO_CMDLINE)
		cmdline = (const char *)(uintptr_t)mbi->cmdline;
	parse_cmdline(cmdline, &p, 0);
	if (p.tick_ms < 1)
		p.tick_ms = 1;
	if (p.tick_ms > 50)
		p.tick_ms = 50;
	if (top_mib * MIB <= DIRTY_BASE)
		p.dirty_mib = 0;
	else if (p.dirty_mib > top_mib - DIRTY_BASE / MIB)
		p.dirty_mib = top_mib - DIRTY_BASE / MIB;

	put_str("csv-guest started mem=");
	put_u32(mem_mib);
	put_str("MiB tick=");
	put_u32(p.tick_ms);
	put_str("ms dirty=");
	put_u32(p.dirty_mib);
	put_str("MiB rate=");
	put_u32(p.rate_mib);
	put_str("MiB/s\n");
	parse_cmdline(cmdline, &p, 1);

	idt_init();
	pic_init();
	pit_init(p.tick_ms);
	__asm__ volatile("sti");
	run(&p);
}

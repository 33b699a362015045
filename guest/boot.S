/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csv-tiny-guest: the Multiboot header, the entry point and the interrupt
 * entry stubs (see guest.c for what the guest does).
 *
 * A Multiboot loader (QEMU's -kernel) enters _start in 32-bit protected
 * mode with paging off, %eax = 0x2BADB002 and %ebx = the Multiboot
 * information. The loader's GDT may be anywhere, so _start loads its own
 * flat one (code 0x08, data 0x10), sets up a stack and calls
 * guest_main(magic, info), which never returns. */

	.file "boot.S"		/* not the temporary file's name: a reproducible image */

#define MB_MAGIC	0x1BADB002
#define MB_FLAGS	0x00000002	/* pass the memory size */

	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.text
	.globl _start
_start:
	cli
	lgdt gdt_desc
	ljmp $0x08, $1f
1:	movw $0x10, %cx
	movw %cx, %ds
	movw %cx, %es
	movw %cx, %fs
	movw %cx, %gs
	movw %cx, %ss
	movl $stack_top, %esp
	pushl %ebx
	pushl %eax
	call guest_main
2:	cli
	hlt
	jmp 2b

/* IRQ 0, the PIT: count the tick, end the interrupt at the master PIC. */
	.globl irq_timer
irq_timer:
	incl guest_ticks
	pushl %eax
	movb $0x20, %al
	outb %al, $0x20
	popl %eax
	iret

/* Every other PIC vector: all other lines are masked, so only a spurious
 * IRQ 7 or 15 can come here, and a spurious IRQ takes no end of interrupt. */
	.globl irq_spurious
irq_spurious:
	iret

/* CPU exceptions 0-31: one 8-byte stub each (fault_stubs + 8 * vector),
 * which hands the vector to guest_fault(); guest_fault() prints it and stops
 * the CPU. */
	.globl fault_stubs
	.balign 8
fault_stubs:
	.set vec, 0
	.rept 32
	.balign 8
	pushl $vec
	jmp fault_common
	.set vec, vec + 1
	.endr
fault_common:
	call guest_fault
3:	cli
	hlt
	jmp 3b

	.section .rodata
	.balign 8
gdt:
	.quad 0				/* null */
	.quad 0x00cf9a000000ffff	/* 0x08: code, base 0, 4 GiB, ring 0 */
	.quad 0x00cf92000000ffff	/* 0x10: data, base 0, 4 GiB, ring 0 */
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt

	.bss
	.balign 16
	.skip 16384
stack_top:

	.section .note.GNU-stack, "", @progbits

#include "textflag.h"

// catchHandler is the handler of the signals the Go runtime keeps from
// os/signal, and of job control (catch.go). The kernel calls it with the
// C ABI, DI = signal, SI = *siginfo_t, on the thread's signal stack
// (SA_ONSTACK; every Go thread has one), with every signal blocked
// (sa_mask). It writes one record {signal, si_code, si_pid, 0}, four
// int32, to the pipe in catchFD. Job control that the kernel sent (a
// terminal's ^Z, a background read or write) stops the process right here,
// as the default action would: the thread that wrote to the terminal must
// not spin through restarts of its write until a goroutine gets to it. It
// returns to catchRestorer and touches no Go state (no g, no stack check,
// no allocation): raw system calls only; the kernel restores every
// register at rt_sigreturn.
TEXT ·catchHandler(SB),NOSPLIT|NOFRAME,$0
	ADJSP	$16
	MOVL	DI, 0(SP)
	MOVL	8(SI), AX		// si_code
	MOVL	AX, 4(SP)
	MOVL	16(SI), AX		// si_pid (the _kill member of the union)
	MOVL	AX, 8(SP)
	MOVL	$0, 12(SP)
	MOVQ	·catchFD(SB), DI
	MOVQ	SP, SI
	MOVQ	$16, DX
	MOVQ	$1, AX			// write(catchFD, record, 16)
	SYSCALL
	CMPL	4(SP), $0x80		// SI_KERNEL
	JNE	done
	MOVL	0(SP), AX
	CMPL	AX, $20			// SIGTSTP
	JEQ	stop
	CMPL	AX, $21			// SIGTTIN
	JEQ	stop
	CMPL	AX, $22			// SIGTTOU
	JNE	done
stop:
	MOVQ	$39, AX			// kill(getpid(), SIGSTOP); PID 1 ignores it
	SYSCALL
	MOVQ	AX, DI
	MOVQ	$19, SI
	MOVQ	$62, AX
	SYSCALL
done:
	ADJSP	$-16
	RET

// catchRestorer is the sa_restorer the kernel returns to from
// catchHandler.
TEXT ·catchRestorer(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$15, AX			// rt_sigreturn
	SYSCALL
	INT	$3

// catchPCs returns the entry addresses of the two functions above, not of
// the Go wrappers a func value would name.
TEXT ·catchPCs(SB),NOSPLIT,$0-16
	LEAQ	·catchHandler(SB), AX
	MOVQ	AX, handler+0(FP)
	LEAQ	·catchRestorer(SB), AX
	MOVQ	AX, restorer+8(FP)
	RET

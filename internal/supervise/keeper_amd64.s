#include "textflag.h"

// keeperStart starts the keeper (keeper.go): a task that shares
// aion-exec's memory (CLONE_VM) but has a copy of its descriptor table,
// in which it closes every descriptor but the keeperN in keeperFDs (the
// inotify instances and keeperPidfd, aion-exec's own pidfd, opened before
// the clone so that no other process can ever take its place), then waits
// on that pidfd for aion-exec to exit, and exits itself. It runs on stack,
// touches nothing of the Go runtime and makes raw system calls only. Every
// signal is blocked on this thread around the clone, so the keeper starts
// with all of them blocked and no Go handler ever runs on it. keeperFDs
// must be sorted. It returns the keeper's PID, or a negative errno.
//
// func keeperStart(stack uintptr) int64
TEXT ·keeperStart(SB),NOSPLIT,$0-16
	MOVQ	$14, AX			// rt_sigprocmask(SIG_SETMASK, &keeperAll, &keeperSaved, 8)
	MOVQ	$2, DI
	LEAQ	·keeperAll(SB), SI
	LEAQ	·keeperSaved(SB), DX
	MOVQ	$8, R10
	SYSCALL
	MOVQ	stack+0(FP), SI
	MOVQ	$0x111, DI		// CLONE_VM | SIGCHLD
	XORQ	DX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	MOVQ	$56, AX			// clone
	SYSCALL
	CMPQ	AX, $0
	JEQ	keeper
	MOVQ	AX, R13
	MOVQ	$14, AX			// rt_sigprocmask(SIG_SETMASK, &keeperSaved, NULL, 8)
	MOVQ	$2, DI
	LEAQ	·keeperSaved(SB), SI
	XORQ	DX, DX
	MOVQ	$8, R10
	SYSCALL
	MOVQ	R13, ret+8(FP)
	RET

keeper:					// on stack, with a descriptor table of its own
	MOVQ	$157, AX		// prctl(PR_SET_NAME, "aion-exec keep"): ps tells it apart
	MOVQ	$15, DI
	LEAQ	·keeperName(SB), SI
	SYSCALL
	XORQ	R14, R14		// the lowest descriptor not yet closed
	XORQ	R15, R15		// i
	LEAQ	·keeperFDs(SB), BX
next:
	CMPQ	R15, ·keeperN(SB)
	JGE	rest
	MOVQ	(BX)(R15*8), R13	// keeperFDs[i]
	INCQ	R15
	CMPQ	R13, R14
	JLE	skip
	MOVQ	$436, AX		// close_range(R14, keeperFDs[i]-1, 0)
	MOVQ	R14, DI
	LEAQ	-1(R13), SI
	XORQ	DX, DX
	SYSCALL
	CMPQ	AX, $0			// a kernel before 5.9: hold nothing at all
	JLT	gone
skip:
	LEAQ	1(R13), R14
	JMP	next
rest:
	MOVQ	$436, AX		// close_range(R14, ~0, 0)
	MOVQ	R14, DI
	MOVL	$-1, SI
	XORQ	DX, DX
	SYSCALL
	CMPQ	AX, $0
	JLT	gone
	MOVQ	·keeperPidfd(SB), AX
	MOVL	AX, 0(SP)		// struct pollfd {fd, POLLIN, 0}
	MOVW	$1, 4(SP)
	MOVW	$0, 6(SP)
wait:
	MOVQ	$7, AX			// poll(&pollfd, 1, -1): until aion-exec has exited
	MOVQ	SP, DI
	MOVQ	$1, SI
	MOVQ	$-1, DX
	SYSCALL
	CMPQ	AX, $-4			// EINTR
	JEQ	wait
gone:
	MOVQ	$60, AX			// exit(0): this task only
	XORQ	DI, DI
	SYSCALL
	INT	$3

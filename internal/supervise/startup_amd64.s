#include "textflag.h"

// entry runs before the Go runtime, when the binary is linked with
// -ldflags=-E=github.com/aionos/aion-exec/internal/supervise.entry: it
// records the signal mask and the ignored signals the process was started
// with, which the runtime changes before any Go code runs, then starts the
// runtime as the default entry would. It uses raw system calls only and
// leaves the stack (argc, argv, envp, auxv) as the kernel laid it out.
TEXT ·entry(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$14, AX			// rt_sigprocmask(SIG_BLOCK, NULL, &startMask, 8)
	MOVQ	$0, DI
	MOVQ	$0, SI
	LEAQ	·startMask(SB), DX
	MOVQ	$8, R10
	SYSCALL
	MOVQ	$1, R12			// signal number
	XORQ	R13, R13		// ignored, bit n-1 for signal n
loop:
	MOVQ	$13, AX			// rt_sigaction(R12, NULL, &startAction, 8)
	MOVQ	R12, DI
	MOVQ	$0, SI
	LEAQ	·startAction(SB), DX
	MOVQ	$8, R10
	SYSCALL
	CMPQ	AX, $0
	JNE	next
	MOVQ	·startAction(SB), AX	// sa_handler
	CMPQ	AX, $1			// SIG_IGN
	JNE	next
	LEAQ	-1(R12), CX
	MOVQ	$1, AX
	SHLQ	CX, AX
	ORQ	AX, R13
next:
	INCQ	R12
	CMPQ	R12, $65
	JLT	loop
	MOVQ	R13, ·startIgnored(SB)
	MOVB	$1, ·startRecorded(SB)
	XORQ	R12, R12
	XORQ	R13, R13
	JMP	_rt0_amd64_linux(SB)

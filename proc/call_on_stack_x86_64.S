// stackalloc_proc_call_on_stack(arg, fn, sp): calls fn(arg) with the stack
// pointer at sp (16-byte aligned, the top of a free stack segment) and
// returns on the caller's stack when fn returns. Only the stack pointer
// changes: fn saves the registers the ABI makes callee-saved, so nothing
// else needs saving, and the call and return pair up in the CPU's return
// predictor. The frame pointer anchors the CFA, so unwinders and debuggers
// walk from the segment into the caller's frames. x86-64 System V only.

#if defined(__x86_64__) && defined(__ELF__)

        .text
        .globl  stackalloc_proc_call_on_stack
        .type   stackalloc_proc_call_on_stack, @function
        .p2align 4
stackalloc_proc_call_on_stack:
        .cfi_startproc
        pushq   %rbp
        .cfi_def_cfa_offset 16
        .cfi_offset %rbp, -16
        movq    %rsp, %rbp
        .cfi_def_cfa_register %rbp
        movq    %rdx, %rsp
        callq   *%rsi
        movq    %rbp, %rsp
        popq    %rbp
        .cfi_def_cfa %rsp, 8
        ret
        .cfi_endproc
        .size   stackalloc_proc_call_on_stack, .-stackalloc_proc_call_on_stack

        .section .note.GNU-stack, "", @progbits

#endif

// The stack overflow report (private to //stack): a SIGSEGV / SIGBUS
// handler that names the stack a fault overflowed and chains every other
// fault to the action that was there before, as the kernel would have run
// it. README, "Signals", says how it shares the signals with other handlers.
//
// Reported: a fault in a guard page below one of our stacks ("fatal error:
// stack overflow: <size>-byte stack [<lo>, <hi>) on M <id>[, G <goid>]
// (fault at ...)"), a signal frame the kernel could not push onto one of
// our stacks ("... (a signal frame did not fit below sp ...)"), and a
// handler that ran past an M's alternate signal stack into its guard
// ("fatal error: signal stack overflow: ...").
//
// Each report goes on with the traceback of the interrupted code
// (base/traceback.h): "  pc 0x<address> in <function>", the faulting
// instruction, then "  called from 0x<address> in <function>" for the
// functions on the stack, a recursion's frames on one line ("(<n>
// frames)"), named by Abseil's async-signal-safe symbolizer when the stack
// the handler runs on has kTracebackStack bytes left (else the addresses,
// and a line saying why the names are missing).
//
// The handler runs on the alternate signal stack every M gives its thread
// (sched/m.h), takes no lock and allocates nothing from the heap: the
// lookup from the fault address to the stack is two loads in the ChunkMap
// and a division; the symbolizer keeps its state in pages it maps itself.

#ifndef STACK_OVERFLOW_H_
#define STACK_OVERFLOW_H_

namespace stackalloc {

class ChunkMap;

namespace internal {

// Installs the handler for SIGSEGV and SIGBUS, once (later calls return at
// once), over `map`, where it finds the guard page a fault hit: every chunk
// and large stack of ours, for the life of the process. Thread-safe. Called
// when the first guarded chunk is made.
void InstallOverflowHandler(const ChunkMap* map);

// Puts the handler in front of the current SIGSEGV and SIGBUS actions again
// if another took its place (stackalloc.h's InstallStackOverflowHandler).
// Thread-safe; installers wait for each other, handlers never do.
void ReinstallOverflowHandler(const ChunkMap* map);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_OVERFLOW_H_

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
// The handler runs on the alternate signal stack every M gives its thread
// (sched/m.h), takes no lock and allocates nothing: the lookup from the
// fault address to the stack is two loads in the ChunkMap and a division.

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

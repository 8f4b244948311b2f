// The stack overflow report (private to //stack).
//
// A SIGSEGV or SIGBUS whose address lies in one of our guard pages dies with
// "fatal error: stack overflow: <size>-byte stack [<lo>, <hi>) on M <id>",
// followed by ", G <goid>" where the thread runs a G its runtime numbered,
// and the fault address. Any other fault goes to the handler that was
// installed before ours, or to the default action, so a user's handler and
// the sanitizers' keep working.
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

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_OVERFLOW_H_

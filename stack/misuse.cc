#include "stack/misuse.h"

#include <cstdint>

#include "base/stack_sizes.h"
#include "base/throw.h"
#include "stack/heap.h"

namespace stackalloc {
namespace internal {
namespace {

[[noreturn]] ABSL_ATTRIBUTE_COLD void DieInMalloc(const char* fn, size_t n) {
  RawPrintf("%s: in malloc, size=%zu want %zu\n", fn, kFixedStack, n);
  Throw(fn);
}

}  // namespace

M* CheckContract(const char* not_on_g0, const char* fn, size_t n) {
  M* m = tls_m;
  if (m == UnboundM()) m = TryBindM();
  if (m == nullptr) return nullptr;
  if (m->curg() != m->g0()) Throw(not_on_g0);
  if ((m->mallocing() != 0 || m->gcing() != 0) && n != kFixedStack) {
    DieInMalloc(fn, n);
  }
  return m;
}

ChunkRecord* RecordOf(void* v, int order, size_t n, int* slot) {
  if (v == nullptr) Throw("stackfree: nil stack");
  const auto a = reinterpret_cast<uintptr_t>(v);
  ChunkRecord* rec = TheChunkMap().Lookup(a);
  const int i = rec == nullptr ? -1 : rec->SlotOfStack(a);
  if (i < 0) DieBadFree("is not a stack from stackalloc", v, 0, 0);
  if (rec->order != order) {
    DieBadFree("freed as", v, n != 0 ? n : OrderStackSize(order),
               rec->stack_size);
  }
  *slot = i;
  return rec;
}

void MoveStack(void* v, int order, size_t n, SlotState from, SlotState to) {
  int i;
  ChunkRecord* rec = RecordOf(v, order, n, &i);
  SlotState found;
  if (rec->Transition(i, from, to, &found)) return;
  if (found == SlotState::kUncarved) {
    // Not carved, or freed twice and its chunk released meanwhile.
    DieBadFree(
        "is not a stack from stackalloc (never handed out, or freed twice "
        "and its chunk since released)",
        v, 0, 0);
  }
  const size_t size = rec->stack_size;
  if (from == SlotState::kCached && to == SlotState::kLive) {
    RawBuffer b;
    b.Str("stackalloc: stack ").Hex(reinterpret_cast<uintptr_t>(v));
    b.Str(" handed out twice (the cache was corrupted)");
    Throw(b.c_str());
  }
  DieBadFree("freed twice", v, 0, size);
}

void CheckHandOut(void* v) {
  const auto a = reinterpret_cast<uintptr_t>(v);
  const ChunkRecord* rec = TheChunkMap().Lookup(a);
  STACKALLOC_CHECK(rec != nullptr);
  MoveStack(v, rec->order, 0, SlotState::kCached, SlotState::kLive);
}

void CheckTakeBack(void* v, size_t n) {
  MoveStack(v, StackOrder(n), n, SlotState::kLive, SlotState::kCached);
}

void DieFreedAgain(void* v) {
  if (v == nullptr) Throw("stackfree: nil stack");
  const ChunkRecord* rec = TheChunkMap().Lookup(reinterpret_cast<uintptr_t>(v));
  DieBadFree("freed twice", v, 0, rec != nullptr ? rec->stack_size.load() : 0);
}

void DieBadFree(const char* what, const void* v, size_t n, size_t size) {
  RawBuffer b;
  b.Str("stackfree: ");
  if (size != 0) b.Udec(size).Str("-byte stack ");
  b.Hex(reinterpret_cast<uintptr_t>(v)).Str(" ").Str(what);
  if (n != 0) b.Str(" ").Udec(n);
  Throw(b.c_str());
}

}  // namespace internal
}  // namespace stackalloc

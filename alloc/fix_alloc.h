// FixAlloc: a free-list allocator for objects of one fixed size.
//
// A port of the Go runtime's FixAlloc (malloc.h, 2011). Memory comes from a
// chunk source in chunks of FixAlloc::kChunk (128 KiB); Alloc() pops the free
// list, or else carves the next object off the current chunk, or else takes a
// new chunk. Free() pushes onto
// the free list, storing the link in the object's first word. Chunks are never
// returned to the chunk source: a FixAlloc only grows, exactly as in Go, and
// the tail of a chunk too short for one more object is left unused.
//
// Not thread-safe: a FixAlloc has a single owner (one M, or a caller holding
// a lock around every call). inuse() and sys() are exact at all times for
// that owner.

#ifndef ALLOC_FIX_ALLOC_H_
#define ALLOC_FIX_ALLOC_H_

#include <cstddef>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"

namespace stackalloc {

class FixAlloc {
 public:
  // Size of each chunk taken from the chunk source (Go's FixAllocChunk).
  static constexpr size_t kChunk = 128 << 10;

  // Returns n (= kChunk) bytes of writable memory, or nullptr on failure.
  // Called with the FixAlloc's `arg`.
  using ChunkSource = void* (*)(void* arg, size_t n);
  // Called with `arg` the first time each object is handed out.
  using FirstUse = void (*)(void* arg, void* p);

  // An uninitialised FixAlloc; call Init() before anything else.
  constexpr FixAlloc() = default;
  FixAlloc(size_t size, ChunkSource source, FirstUse first = nullptr,
           void* arg = nullptr) {
    Init(size, source, first, arg);
  }

  FixAlloc(const FixAlloc&) = delete;
  FixAlloc& operator=(const FixAlloc&) = delete;

  // Go's FixAlloc_Init. REQUIRES: sizeof(void*) <= size <= kChunk, size a
  // multiple of alignof(void*); source != nullptr. Dies otherwise.
  void Init(size_t size, ChunkSource source, FirstUse first = nullptr,
            void* arg = nullptr);

  // Returns an object of size() bytes, or nullptr if a new chunk was needed
  // and the chunk source failed; then nothing (counters included) changes.
  void* Alloc() {
    Link* v = list_;
    if (ABSL_PREDICT_TRUE(v != nullptr)) {
      list_ = v->next;
      inuse_ += size_;
      return v;
    }
    return Carve();
  }

  // Returns p, which came from this FixAlloc's Alloc(), to the free list.
  void Free(void* p) {
    Link* v = static_cast<Link*>(p);
    v->next = list_;
    list_ = v;
    inuse_ -= size_;
  }

  size_t size() const { return size_; }
  // Bytes handed out by Alloc() and not yet passed to Free().
  size_t inuse() const { return inuse_; }
  // Bytes obtained from the chunk source (a multiple of kChunk).
  size_t sys() const { return sys_; }

 private:
  struct Link {
    Link* next;
  };

  // Slow path of Alloc(): carve from the current chunk or a new one.
  ABSL_ATTRIBUTE_NOINLINE void* Carve();

  size_t size_ = 0;
  ChunkSource source_ = nullptr;
  FirstUse first_ = nullptr;
  void* arg_ = nullptr;
  Link* list_ = nullptr;
  char* chunk_ = nullptr;
  size_t nchunk_ = 0;
  size_t inuse_ = 0;
  size_t sys_ = 0;
};

}  // namespace stackalloc

#endif  // ALLOC_FIX_ALLOC_H_

// ChunkRecord: what we know about one chunk of stack memory (Go's mspan for
// stack spans): where it is, how it is cut into slots, and the state of each
// slot.
//
// A chunk is a granule-aligned range (kChunkGranule) cut into `nslots` slots
// of `slot_size` bytes. A slot is a guard page (`guard` bytes, 0 when the
// chunk was made without guards) followed by one stack of `stack_size`
// bytes, so every stack has its guard immediately below its lowest address
// (stacks grow down). A stack larger than the largest order gets a chunk of
// its own with one slot (order kLargeOrder).
//
// Records are type-stable: once carved they stay mapped and hold a record for
// the life of the process, so a racing reader (the overflow handler, a free
// being checked) never reads unmapped memory. The layout fields are written
// before the record is published (ChunkMap::Set, release) and never change
// while it is registered; slot states are atomics any thread may read, and a
// state changes only through Transition() by the thread that owns the slot
// at that moment.

#ifndef ALLOC_CHUNK_H_
#define ALLOC_CHUNK_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace stackalloc {

// Chunks start at multiples of this (so the ChunkMap finds a chunk from any
// address in it by shifting) and are multiples of the page size long.
inline constexpr size_t kChunkGranule = 128 << 10;

// Where a slot's stack is. Stacks move kUncarved -> (an M) -> kPooled ->
// (an M) ... ; "an M" is kTaken in the default build, and kCached (in an M's
// cache) or kLive (handed out) in checked builds, which check every call.
enum class SlotState : uint8_t {
  kUncarved = 0,  // Not carved yet (or its chunk was released whole).
  kTaken = 1,     // In an M's cache or handed out (default build).
  kCached = 2,    // In an M's cache (checked builds).
  kLive = 3,      // Handed out by stackalloc (checked builds).
  kPooled = 4,    // Free in the global pool of its order.
  kReleased = 5,  // Free in the global pool, its pages returned to the OS.
  kStranded = 6,  // Free, but no pool record could be had for it.
};

// Flags kept beside the state, for the life of the slot.
inline constexpr uint8_t kSlotStateMask = 0x0f;
inline constexpr uint8_t kSlotGuarded = 0x10;    // Guard installed.
inline constexpr uint8_t kSlotUnguarded = 0x20;  // Guard wanted, not given.
inline constexpr uint8_t kSlotMprotect = 0x40;   // The guard is mprotect's.
// A freed large stack whose mapping the OS did not take back yet, its pages
// returned (else they are still resident).
inline constexpr uint8_t kSlotPagesReleased = 0x80;

struct alignas(64) ChunkRecord {
  static constexpr int kMaxSlots = 32;
  static constexpr int kLargeOrder = -1;

  // FixAlloc's free-list link while the record is free (FixAlloc stores it
  // in an object's first word): no reader of the fields below looks here.
  void* free_link = nullptr;

  // The layout. A pooled chunk's never changes once published; a large
  // stack's record is freed with its stack and may be reused for another
  // chunk while a reader without a claim (FindStack, the overflow handler)
  // still holds it from the chunk map. So the layout is atomic, rewritten
  // only between BeginRewrite and EndRewrite, and such readers check
  // ReadBegin / ReadValid around what they read (a seqlock).
  std::atomic<uint32_t> seq{0};    // Odd while the layout is being rewritten.
  std::atomic<uintptr_t> base{0};  // First byte of the chunk.
  std::atomic<size_t> bytes{0};    // Length of the chunk.
  std::atomic<size_t> stack_size{0};  // Bytes of each stack.
  std::atomic<size_t> slot_size{0};   // guard + stack_size.
  std::atomic<size_t> guard{0};  // Guard bytes below each stack: 0 or a page.
  std::atomic<int> nslots{0};
  std::atomic<int> order{0};  // Stack order, or kLargeOrder.
  std::atomic<uint8_t> slots[kMaxSlots] = {};

  // On the list of every chunk of this order (set before publication, never
  // changed; large stacks are on no list).
  ChunkRecord* order_next = nullptr;
  // Scratch of the order's scavenger, which runs one at a time (atomic: a
  // released record's is reset by BeginRewrite on another thread while the
  // pass walks every record).
  std::atomic<int> scavenge_count{0};
  // Slots free in the pool (kPooled, kReleased, kStranded), kept by
  // Transition(): the scavenger takes the pool's batches off it only when
  // some chunk has every slot there. A hint: a slot may be on its way.
  std::atomic<int> pool_slots{0};
  // Link on the order pool's list of released chunks (LockFreeStack).
  std::atomic<ChunkRecord*> pool_link{nullptr};

  bool Contains(uintptr_t a) const { return a - base < bytes; }

  // The owner, before it sets the layout of a record it took from FixAlloc
  // (every slot uncarved, on no list), and after.
  void BeginRewrite();
  void EndRewrite() { seq.store(seq.load() + 1); }

  // For readers without a claim on the record (FindStack, the overflow
  // handler), which may hold it while it is rewritten: the stack whose
  // bytes hold a, if its slot is carved (ReadStackHolding), or whose guard
  // page holds a (ReadGuardHolding). True, with the stack's lowest address
  // and bytes, only if the record kept one layout throughout the read.
  // Lock-free, async-signal-safe.
  bool ReadStackHolding(uintptr_t a, uintptr_t* lo, size_t* size) const;
  bool ReadGuardHolding(uintptr_t a, uintptr_t* lo, size_t* size) const;

  // The whole layout, for the same readers (the census, which walks every
  // record): true, with a copy in *l and the sequence it was read under in
  // *read_seq, if the record kept one layout throughout; StillLaidOut(that)
  // says whether it still has that layout (and so whether slot states read
  // in between were this layout's). Lock-free, async-signal-safe.
  struct Layout {
    uintptr_t base;
    size_t bytes;
    size_t stack_size;
    size_t slot_size;
    size_t guard;
    int nslots;
    int order;
    uintptr_t StackAt(int i) const { return base + i * slot_size + guard; }
  };
  bool ReadLayout(Layout* l, uint32_t* read_seq) const;
  bool StillLaidOut(uint32_t read_seq) const { return ReadValid(read_seq); }

  uintptr_t StackAt(int i) const { return base + i * slot_size + guard; }

  // Index of the slot whose stack starts exactly at v, or -1.
  int SlotOfStack(uintptr_t v) const;

  // Index of the slot whose guard page holds a, or -1.
  int SlotOfGuard(uintptr_t a) const;

  // Index of the slot whose stack (not its guard) holds a, or -1.
  int SlotHolding(uintptr_t a) const;

  SlotState State(int i) const {
    return static_cast<SlotState>(slots[i].load(std::memory_order_acquire) &
                                  kSlotStateMask);
  }
  uint8_t Flags(int i) const {
    return slots[i].load(std::memory_order_relaxed) & ~kSlotStateMask;
  }

  // Moves slot i from `from` to `to`, keeping its flags. Returns false, and
  // the state it found in *found, if it was not in `from`.
  bool Transition(int i, SlotState from, SlotState to, SlotState* found);

  // Sets flag bits of slot i (by its owner).
  void AddFlags(int i, uint8_t flags) {
    slots[i].fetch_or(flags, std::memory_order_relaxed);
  }

 private:
  // The seqlock's read side: what was read of the layout between
  // s = ReadBegin() and ReadValid(s) is one layout the record had, if true.
  // Every access to seq and to the layout is seq_cst (plain moves on x86-64
  // but for the rewrite's stores), so no fence is needed, which TSan could
  // not follow.
  uint32_t ReadBegin() const { return seq.load(); }
  bool ReadValid(uint32_t s) const { return (s & 1) == 0 && seq.load() == s; }
};

}  // namespace stackalloc

#endif  // ALLOC_CHUNK_H_

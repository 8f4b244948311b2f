#include "stack/usage.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "absl/base/attributes.h"
#include "alloc/chunk.h"
#include "alloc/chunk_map.h"
#include "alloc/sys_alloc.h"
#include "base/stack_sizes.h"
#include "stack/heap.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace internal {
namespace {

ABSL_CONST_INIT std::atomic<ResidencySource> residency_source{&SysResidency};

constexpr size_t kWindowBytes = kMaxResidencyPages * kPageSize;

uintptr_t GranuleRoundUp(uintptr_t a) {
  return (a + kChunkGranule - 1) & ~(kChunkGranule - 1);
}

bool HandedOut(SlotState s) {
  return s == SlotState::kTaken || s == SlotState::kLive;
}

// One census: the walk over the chunk map, and the window of residency it
// reads ahead, one system call for a run of neighbouring chunks. Lives on
// the caller's stack (about 4 KiB).
class Census {
 public:
  explicit Census(StackUsage* u) : u_(u) {}

  void Run() {
    const ChunkMap& map = TheChunkMap();
    uintptr_t at = 0, granule = 0;
    while (const ChunkRecord* rec = map.NextEntry(at, &granule)) {
      ChunkRecord::Layout l;
      uint32_t seq;
      if (!rec->ReadLayout(&l, &seq)) {
        at = granule + kChunkGranule;  // Being rewritten: not a stack now.
        continue;
      }
      // Past this chunk, whatever comes of it: its other granules lead back
      // to it.
      at = l.base > granule ? granule + kChunkGranule
                            : GranuleRoundUp(l.base + l.bytes);
      if (l.base != granule) continue;  // Not its first granule.
      if (l.order == ChunkRecord::kLargeOrder) {
        CountLarge(*rec, l, seq);
      } else if (l.order >= 0 && l.order < kNumStackOrders) {
        CountChunk(map, *rec, l);
      }
    }
    // The caches' counts, read once: in the default build a slot says only
    // that an M has it, handed out or cached.
    const MemStats st = ReadMemStats();
    for (int k = 0; k < kNumStackOrders; ++k) {
      StackOrderUsage& o = u_->orders[k];
      o.stack_size = OrderStackSize(k);
      const uint64_t cached = st.orders[k].cached / o.stack_size;
      o.handed_out = live_[k] + (taken_[k] > cached ? taken_[k] - cached : 0);
    }
  }

 private:
  bool Read(uintptr_t lo, uintptr_t hi) {
    ++u_->system_calls;
    if (residency_source.load(std::memory_order_relaxed)(
            reinterpret_cast<const void*>(lo), hi - lo, vec_)) {
      lo_ = lo;
      hi_ = hi;
      return true;
    }
    lo_ = hi_ = 0;
    return false;
  }

  // Makes the window hold [l.base, l.base + l.bytes), reading it with the
  // chunks that follow it without a gap, as many as the window holds;
  // false if the chunk's residency could not be read. A gap between two
  // chunks of one arena reservation is mapped (the padding up to a
  // granule), but one between chunks made otherwise may not be: then the
  // kernel refuses the run, and the chunk is read alone.
  bool Window(const ChunkMap& map, const ChunkRecord::Layout& l) {
    const uintptr_t end = l.base + l.bytes;
    if (lo_ <= l.base && end <= hi_) return true;
    uintptr_t hi = end;
    for (uintptr_t next = GranuleRoundUp(end);;) {
      const ChunkRecord* rec = map.Lookup(next);
      ChunkRecord::Layout n;
      uint32_t seq;
      if (rec == nullptr || !rec->ReadLayout(&n, &seq) || n.base != next ||
          n.order == ChunkRecord::kLargeOrder ||
          n.base + n.bytes - l.base > kWindowBytes) {
        break;
      }
      hi = n.base + n.bytes;
      next = GranuleRoundUp(hi);
    }
    return Read(l.base, hi) || (hi != end && Read(l.base, end));
  }

  // A chunk of an order: its layout never changes once published.
  void CountChunk(const ChunkMap& map, const ChunkRecord& rec,
                  const ChunkRecord::Layout& l) {
    StackOrderUsage& o = u_->orders[l.order];
    const size_t pages = l.stack_size / kPageSize;
    // A chunk released whole (every slot uncarved) holds no stack: not
    // read, unless a run read for its neighbours covers it.
    bool any = false;
    for (int i = 0; i < l.nslots && !any; ++i) {
      any = rec.State(i) != SlotState::kUncarved;
    }
    if (!any) return;
    ++u_->chunks;
    const bool read = Window(map, l);
    for (int i = 0; i < l.nslots; ++i) {
      const SlotState s = rec.State(i);
      if (s == SlotState::kUncarved) continue;
      ++o.stacks;
      if (s == SlotState::kLive) ++live_[l.order];
      if (s == SlotState::kTaken) ++taken_[l.order];
      if (!read) {
        ++o.unread;
        continue;
      }
      const unsigned char* v = vec_ + (l.StackAt(i) - lo_) / kPageSize;
      size_t lowest = 0;  // The lowest resident page, from the bottom.
      while (lowest < pages && v[lowest] == 0) ++lowest;
      ++o.depth[pages - lowest];
      if (lowest == 0) ++o.near_overflow;
    }
  }

  // A stack above 1 MiB: its record goes with it when it is freed, so every
  // read is checked against the record's sequence, and only its lowest
  // page is read.
  void CountLarge(const ChunkRecord& rec, const ChunkRecord::Layout& l,
                  uint32_t seq) {
    if (!HandedOut(rec.State(0)) || !rec.StillLaidOut(seq)) return;
    ++u_->chunks;
    unsigned char v = 0;
    ++u_->system_calls;
    const bool read = residency_source.load(std::memory_order_relaxed)(
        reinterpret_cast<const void*>(l.StackAt(0)), kPageSize, &v);
    // Freed meanwhile (its slot leaves the handed-out state before its
    // mapping goes): not counted, whatever was read.
    if (!HandedOut(rec.State(0)) || !rec.StillLaidOut(seq)) return;
    LargeStackUsage& o = u_->large;
    ++o.stacks;
    ++o.handed_out;
    if (!read) {
      ++o.unread;
    } else if (v != 0) {
      ++o.near_overflow;
    }
  }

  StackUsage* const u_;
  uint64_t live_[kNumStackOrders] = {};
  uint64_t taken_[kNumStackOrders] = {};
  uintptr_t lo_ = 0, hi_ = 0;  // What vec_ holds.
  unsigned char vec_[kMaxResidencyPages];
};

// A text in the caller's buffer, cut where it runs out, its full length
// counted all the same.
class Text {
 public:
  Text(char* buf, size_t size) : buf_(buf), size_(size) {
    if (size_ > 0) buf_[0] = '\0';
  }

  Text& Str(const char* s) {
    while (*s != '\0') Put(*s++);
    return *this;
  }
  Text& Udec(uint64_t v) {
    char d[20];
    int n = 0;
    do {
      d[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) Put(d[--n]);
    return *this;
  }
  // s, right-aligned in a column of `width`.
  Text& Right(const char* s, size_t width) {
    size_t n = strlen(s);
    while (n++ < width) Put(' ');
    return Str(s);
  }
  Text& Right(uint64_t v, size_t width) {
    char d[24];
    Text t(d, sizeof(d));
    t.Udec(v);
    return Right(d, width);
  }
  size_t length() const { return len_; }

 private:
  void Put(char c) {
    if (len_ + 1 < size_) {
      buf_[len_] = c;
      buf_[len_ + 1] = '\0';
    }
    ++len_;
  }

  char* const buf_;
  const size_t size_;
  size_t len_ = 0;
};

// "4 KiB", "1 MiB", "> 1 MiB" for a stack of `pages` pages.
void SizeName(size_t pages, char* out, size_t size) {
  Text t(out, size);
  const size_t kib = pages * (kPageSize >> 10);
  if (kib >= 1024 && kib % 1024 == 0) {
    t.Udec(kib >> 10).Str(" MiB");
  } else {
    t.Udec(kib).Str(" KiB");
  }
}

// The advice: the smallest order that holds `pages` and one page to spare.
void Advice(size_t pages, char* out, size_t size) {
  const int k = OrderHolding(pages + 1);
  if (k < 0) {
    Text(out, size).Str("> 1 MiB");
  } else {
    SizeName(OrderStackSize(k) / kPageSize, out, size);
  }
}

}  // namespace

void TakeCensus(StackUsage* out) {
  // Zeroed in place: `*out = StackUsage()` built a second 19 KiB object on
  // the stack in unoptimised builds (45 KiB a census there, more than a
  // sanitizer's 32 KiB signal stack holds).
  static_assert(std::is_trivially_copyable_v<StackUsage>,
                "all zero bytes is the empty census");
  memset(static_cast<void*>(out), 0, sizeof *out);
  Census census(out);
  census.Run();
}

size_t DepthPercentile(const StackOrderUsage& o, int permille) {
  const size_t pages = o.stack_size / kPageSize;
  uint64_t touched = 0;
  for (size_t d = 1; d <= pages && d <= kMaxStackPages; ++d) {
    touched += o.depth[d];
  }
  if (touched == 0) return 0;
  uint64_t below = 0;
  for (size_t d = 1; d <= pages && d <= kMaxStackPages; ++d) {
    below += o.depth[d];
    if (below * 1000 >= touched * static_cast<uint64_t>(permille)) return d;
  }
  return pages;
}

int OrderHolding(size_t pages) {
  for (int k = 0; k < kNumStackOrders; ++k) {
    if (OrderStackSize(k) / kPageSize >= pages) return k;
  }
  return -1;
}

size_t FormatUsage(const StackUsage& u, char* buf, size_t size) {
  Text t(buf, size);
  t.Str(
      "stack usage: depth = pages touched below each stack's top since its "
      "memory was last returned\n");
  t.Right("stack", 8).Right("stacks", 10).Right("handed out", 12);
  t.Right("touched", 10).Right("p50 KiB", 9).Right("p99 KiB", 9);
  t.Right("max KiB", 9).Right("near overflow", 15);
  t.Right("fits p99.9", 12).Right("fits max", 11).Str("\n");
  bool starred = false;
  for (int k = 0; k < kNumStackOrders; ++k) {
    const StackOrderUsage& o = u.orders[k];
    if (o.stacks == 0) continue;
    const size_t pages = OrderStackSize(k) / kPageSize;
    uint64_t touched = 0;
    for (size_t d = 1; d <= pages; ++d) touched += o.depth[d];
    const size_t p50 = DepthPercentile(o, 500);
    const size_t p99 = DepthPercentile(o, 990);
    const size_t p999 = DepthPercentile(o, 999);
    const size_t max = DepthPercentile(o, 1000);
    char name[16], fit999[24], fitmax[24];
    SizeName(pages, name, sizeof(name));
    t.Right(name, 8).Right(o.stacks, 10).Right(o.handed_out, 12);
    t.Right(touched, 10).Right(p50 * (kPageSize >> 10), 9);
    t.Right(p99 * (kPageSize >> 10), 9).Right(max * (kPageSize >> 10), 9);
    t.Right(o.near_overflow, 15);
    if (touched == 0) {
      t.Right("-", 11).Right("-", 11);
    } else {
      // Starred when the stacks it is for reached the page next to the
      // guard: they may have needed more.
      Advice(p999, fit999, sizeof(fit999));
      Advice(max, fitmax, sizeof(fitmax));
      starred = starred || max == pages;
      t.Right(fit999, 11).Str(p999 == pages ? "*" : " ");
      t.Right(fitmax, 10).Str(max == pages ? "*" : "");
    }
    if (o.unread != 0) t.Str("  (").Udec(o.unread).Str(" unread)");
    t.Str("\n");
  }
  if (u.large.stacks != 0) {
    t.Right("> 1 MiB", 8).Right(u.large.stacks, 10);
    t.Right(u.large.handed_out, 12).Right("", 37);
    t.Right(u.large.near_overflow, 15);
    if (u.large.unread != 0) t.Str("  (").Udec(u.large.unread).Str(" unread)");
    t.Str("\n");
  }
  if (starred) {
    t.Str(
        "* the deepest of these stacks reached the page next to the guard: "
        "they may need more\n");
  }
  return t.length();
}

void SetResidencySource(ResidencySource source) {
  residency_source.store(source != nullptr ? source : &SysResidency,
                         std::memory_order_relaxed);
}

}  // namespace internal
}  // namespace stackalloc

#include "base/traceback.h"

#include <ucontext.h>

#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/debugging/symbolize.h"
#include "base/throw.h"

namespace stackalloc {
namespace {

// One line of the traceback: "  <what> 0x<a>[ in <function>][ (<n>
// frames)]". `name_at` is the address to name: a return address's call
// is the byte before it (a call may be its function's last instruction).
void WriteLine(const char* what, uintptr_t a, uintptr_t name_at,
               uint64_t frames, bool names) {
  RawBuffer b;  // 320 bytes: a name is cut to fit the line.
  b.Str("  ").Str(what).Str(" ").Hex(a);
  if (names) {
    char name[224];
    b.Str(" in ").Str(absl::Symbolize(reinterpret_cast<const void*>(name_at),
                                      name, sizeof(name))
                          ? name
                          : "?");
  }
  if (frames > 1) b.Str(" (").Udec(frames).Str(" frames)");
  b.Str("\n");
  RawWrite(b.c_str());
}

// A frame record: the caller's frame pointer, then the return address (on
// x86-64 and aarch64 alike). Its reads are the walk's only ones, of words
// beside a frame's locals and their ASan redzones.
struct FrameRecord {
  uintptr_t next;
  uintptr_t ret;
};
ABSL_ATTRIBUTE_NO_SANITIZE_ADDRESS FrameRecord ReadRecord(uintptr_t fp) {
  const auto* words = reinterpret_cast<const volatile uintptr_t*>(fp);
  return {words[0], words[1]};
}

// The lines after the pc's: a line per run of frames with one return
// address, the first kTracebackLines of them.
class Lines {
 public:
  explicit Lines(bool names) : names_(names) {}

  void Frame(uintptr_t ret) {
    if (ret != ret_) Flush();
    ret_ = ret;
    ++run_;
  }

  void Flush() {
    if (run_ == 0) return;
    if (lines_ < kTracebackLines) {
      WriteLine("called from", ret_, ret_ - 1, run_, names_);
      ++lines_;
    } else {
      more_ += run_;
    }
    run_ = 0;
  }

  void End() {
    Flush();
    if (more_ == 0) return;
    RawBuffer b;
    b.Str("  ... and ").Udec(more_).Str(" frames more\n");
    RawWrite(b.c_str());
  }

 private:
  const bool names_;
  uintptr_t ret_ = 0;
  uint64_t run_ = 0;
  int lines_ = 0;
  uint64_t more_ = 0;
};

}  // namespace

Interrupted InterruptedAt(const void* ucontext) {
  Interrupted r;
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
#if defined(__x86_64__)
  r.pc = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  r.sp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
  r.fp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RBP]);
#elif defined(__aarch64__)
  r.pc = static_cast<uintptr_t>(uc->uc_mcontext.pc);
  r.sp = static_cast<uintptr_t>(uc->uc_mcontext.sp);
  r.fp = static_cast<uintptr_t>(uc->uc_mcontext.regs[29]);
#else
  (void)uc;
#endif
  return r;
}

void WriteTraceback(const Interrupted& r, uintptr_t lo, uintptr_t hi,
                    bool names) {
  WriteLine("pc", r.pc, r.pc, 1, names);
  // Frames lie at or above the stack pointer, and each record's two words
  // inside the stack; each caller's frame is above its callee's.
  const uintptr_t floor = r.sp > lo ? r.sp : lo;
  if (hi < floor || hi - floor < sizeof(FrameRecord)) return;
  const uintptr_t ceiling = hi - sizeof(FrameRecord);
  Lines lines(names);
  uintptr_t fp = r.fp;
  while (fp >= floor && fp <= ceiling && fp % sizeof(uintptr_t) == 0) {
    const FrameRecord rec = ReadRecord(fp);
    if (rec.ret == 0) break;  // The outermost frame of some stacks.
    lines.Frame(rec.ret);
    if (rec.next <= fp) break;
    fp = rec.next;
  }
  lines.End();
}

}  // namespace stackalloc

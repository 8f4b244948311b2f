// WriteTraceback: from a real fault, in a handler on an alternate signal
// stack, it names the faulting function and its callers within its stack
// budget (kTracebackStack, measured here on a painted signal stack); on
// stacks the test lays out by hand, it follows frame records exactly,
// shares a line among a recursion's frames, cuts long tracebacks, and
// never reads past the bounds it is given (the page above them is
// inaccessible: a read there would kill the test).

#include "base/traceback.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/base/attributes.h"
#include "base/sanitizers.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

// Runs f with stderr going to a temporary file; returns what f wrote.
template <typename F>
std::string CaptureStderr(F f) {
  FILE* tmp = tmpfile();
  EXPECT_NE(tmp, nullptr);
  const int saved = dup(STDERR_FILENO);
  dup2(fileno(tmp), STDERR_FILENO);
  f();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  rewind(tmp);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), tmp)) > 0) out.append(buf, n);
  fclose(tmp);
  return out;
}

// The lines of out, without their newlines.
std::vector<std::string> LinesOf(const std::string& out) {
  std::vector<std::string> lines;
  size_t at = 0, nl;
  while ((nl = out.find('\n', at)) != std::string::npos) {
    lines.push_back(out.substr(at, nl - at));
    at = nl + 1;
  }
  return lines;
}

std::string HexOf(uintptr_t a) {
  char buf[32];
  snprintf(buf, sizeof(buf), "0x%lx", static_cast<unsigned long>(a));
  return buf;
}

// --- A real fault, named --------------------------------------------------

constexpr size_t kSignalStack = 256 << 10;
constexpr unsigned char kPaint = 0xa5;

unsigned char* signal_stack;
void* inaccessible;            // A page that faults when written.
uintptr_t stack_lo, stack_hi;  // The faulting thread's stack.
bool with_names;
uintptr_t handler_frame;
sigjmp_buf back;

void OnSegv(int, siginfo_t*, void* context) {
  handler_frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  WriteTraceback(InterruptedAt(context), stack_lo, stack_hi, with_names);
  siglongjmp(back, 1);
}

ABSL_ATTRIBUTE_NOINLINE void FaultingLeaf() {
  *static_cast<volatile char*>(inaccessible) = 1;
  asm volatile("");  // Not a tail call in the callers.
}

// Callers with long demangled names, as templates and lambdas give.
template <typename F>
ABSL_ATTRIBUTE_NOINLINE void Through(F f) {
  f();
  asm volatile("");
}

ABSL_ATTRIBUTE_NOINLINE void FaultThroughTemplates() {
  Through([] { Through([] { FaultingLeaf(); }); });
  asm volatile("");
}

// Faults on the calling thread's stack with the handler on a painted
// signal stack; returns the traceback, and in *used the bytes of signal
// stack the traceback took below the handler's frame.
std::string FaultAndTrace(bool names, size_t* used) {
  signal_stack = static_cast<unsigned char*>(
      mmap(nullptr, kSignalStack, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  inaccessible =
      mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(signal_stack, kPaint, kSignalStack);
  stack_t ss{}, old_ss;
  ss.ss_sp = signal_stack;
  ss.ss_size = kSignalStack;
  sigaltstack(&ss, &old_ss);
  struct sigaction sa {
  }, old_sa;
  sa.sa_sigaction = &OnSegv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_sa);
  pthread_attr_t attr;
  void* addr;
  size_t size;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  stack_lo = reinterpret_cast<uintptr_t>(addr);
  stack_hi = stack_lo + size;
  with_names = names;
  std::string out = CaptureStderr([] {
    if (sigsetjmp(back, 1) == 0) FaultThroughTemplates();
  });
  sigaction(SIGSEGV, &old_sa, nullptr);
  sigaltstack(&old_ss, nullptr);
  size_t lowest = 0;
  while (lowest < kSignalStack && signal_stack[lowest] == kPaint) ++lowest;
  *used = handler_frame - reinterpret_cast<uintptr_t>(signal_stack + lowest);
  munmap(signal_stack, kSignalStack);
  munmap(inaccessible, 4096);
  return out;
}

// First in the file: the symbolizer's first call in the process (reading
// the maps and the ELF files) is its deepest.
TEST(TracebackTest, NamesTheFaultingFunctionAndItsCallersWithinBudget) {
  size_t used = 0;
  const std::string out = FaultAndTrace(/*names=*/true, &used);
  printf("traceback with names: %zu bytes of stack below the handler\n%s", used,
         out.c_str());
  EXPECT_LT(used, kTracebackStack);
  const std::vector<std::string> lines = LinesOf(out);
  ASSERT_GE(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0].rfind("  pc 0x", 0), 0u) << out;
  EXPECT_NE(lines[0].find(" in stackalloc::(anonymous namespace)::"
                          "FaultingLeaf()"),
            std::string::npos)
      << out;
  // The callers, innermost first (the lambdas may be inlined): Through,
  // then the function that began it.
  size_t through = 0, began = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].rfind("  called from 0x", 0), 0u) << out;
    if (through == 0 &&
        lines[i].find(" in stackalloc::(anonymous namespace)::Through<") !=
            std::string::npos) {
      through = i;
    }
    // Its own line, not one of its lambdas'.
    const std::string name =
        " in stackalloc::(anonymous namespace)::FaultThroughTemplates()";
    if (began == 0 && lines[i].size() > name.size() &&
        lines[i].substr(lines[i].size() - name.size()) == name) {
      began = i;
    }
  }
  EXPECT_GT(through, 0u) << out;
  EXPECT_GT(began, through) << out;
}

TEST(TracebackTest, WithoutNamesItNeedsLittleStack) {
  size_t used = 0;
  const std::string out = FaultAndTrace(/*names=*/false, &used);
  EXPECT_LT(used, kTracebackStackWithoutNames);
  const std::vector<std::string> lines = LinesOf(out);
  ASSERT_GE(lines.size(), 2u) << out;
  EXPECT_EQ(lines[0].rfind("  pc 0x", 0), 0u) << out;
  EXPECT_EQ(lines[1].rfind("  called from 0x", 0), 0u) << out;
  EXPECT_EQ(out.find(" in "), std::string::npos) << out;
}

// --- Stacks laid out by hand ------------------------------------------------

// A page of "stack" with an inaccessible page above it: the walk must
// never touch the latter.
class FakeStack {
 public:
  FakeStack() {
    mem_ = static_cast<char*>(mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    mprotect(mem_ + 4096, 4096, PROT_NONE);
  }
  ~FakeStack() { munmap(mem_, 2 * 4096); }
  uintptr_t lo() const { return reinterpret_cast<uintptr_t>(mem_); }
  uintptr_t hi() const { return lo() + 4096; }
  // Writes a frame record at lo() + offset.
  void Record(size_t offset, uintptr_t next, uintptr_t ret) {
    auto* words = reinterpret_cast<uintptr_t*>(mem_ + offset);
    words[0] = next;
    words[1] = ret;
  }

 private:
  char* mem_;
};

std::string Trace(const FakeStack& s, uintptr_t fp, uintptr_t sp) {
  Interrupted r;
  r.pc = 0x1234;
  r.sp = sp;
  r.fp = fp;
  return CaptureStderr([&] { WriteTraceback(r, s.lo(), s.hi(), false); });
}

TEST(TracebackTest, FollowsRecordsUpAndNeverPastTheBounds) {
  FakeStack s;
  // Three records up the stack; the last record's next points into the
  // inaccessible page above.
  s.Record(64, s.lo() + 512, 0x1111);
  s.Record(512, s.hi() - 16, 0x2222);
  s.Record(4096 - 16, s.hi() + 64, 0x3333);
  EXPECT_EQ(Trace(s, s.lo() + 64, s.lo() + 32),
            "  pc 0x1234\n  called from 0x1111\n  called from 0x2222\n"
            "  called from 0x3333\n");
  // A record that points down, or back to itself, ends the walk.
  s.Record(512, s.lo() + 64, 0x2222);
  EXPECT_EQ(Trace(s, s.lo() + 64, s.lo() + 32),
            "  pc 0x1234\n  called from 0x1111\n  called from 0x2222\n");
  // Frames below the stack pointer, outside the stack, or misaligned are
  // not read at all.
  EXPECT_EQ(Trace(s, s.lo() + 64, s.lo() + 128), "  pc 0x1234\n");
  EXPECT_EQ(Trace(s, s.hi() + 64, s.lo()), "  pc 0x1234\n");
  EXPECT_EQ(Trace(s, s.hi() - 8, s.lo()), "  pc 0x1234\n");
  EXPECT_EQ(Trace(s, s.lo() + 65, s.lo()), "  pc 0x1234\n");
  // A return address of 0 is the outermost frame.
  s.Record(512, s.hi() - 16, 0);
  EXPECT_EQ(Trace(s, s.lo() + 64, s.lo()),
            "  pc 0x1234\n  called from 0x1111\n");
}

TEST(TracebackTest, ARecursionSharesALineAndLongTracebacksAreCut) {
  FakeStack s;
  // 100 frames of one recursion, then one of its caller.
  for (size_t i = 0; i < 100; ++i)
    s.Record(16 * i, s.lo() + 16 * (i + 1), 0xaaa);
  s.Record(16 * 100, 0, 0xbbb);
  EXPECT_EQ(Trace(s, s.lo(), s.lo()),
            "  pc 0x1234\n  called from 0xaaa (100 frames)\n"
            "  called from 0xbbb\n");
  // 200 frames, each returning somewhere else: kTracebackLines lines, then
  // a count of the rest.
  for (size_t i = 0; i < 200; ++i)
    s.Record(16 * i, s.lo() + 16 * (i + 1), 0x1000 + i);
  s.Record(16 * 200, 0, 0);
  const std::string out = Trace(s, s.lo(), s.lo());
  std::string want = "  pc 0x1234\n";
  for (int i = 0; i < kTracebackLines; ++i) {
    want += "  called from " + HexOf(0x1000 + i) + "\n";
  }
  want +=
      "  ... and " + std::to_string(200 - kTracebackLines) + " frames more\n";
  EXPECT_EQ(out, want);
}

TEST(TracebackTest, InterruptedAtReadsTheContext) {
  ucontext_t uc{};
#if defined(__x86_64__)
  uc.uc_mcontext.gregs[REG_RIP] = 0x10;
  uc.uc_mcontext.gregs[REG_RSP] = 0x20;
  uc.uc_mcontext.gregs[REG_RBP] = 0x30;
#elif defined(__aarch64__)
  uc.uc_mcontext.pc = 0x10;
  uc.uc_mcontext.sp = 0x20;
  uc.uc_mcontext.regs[29] = 0x30;
#else
  GTEST_SKIP() << "no registers read on this architecture";
#endif
  const Interrupted r = InterruptedAt(&uc);
  EXPECT_EQ(r.pc, 0x10u);
  EXPECT_EQ(r.sp, 0x20u);
  EXPECT_EQ(r.fp, 0x30u);
}

}  // namespace
}  // namespace stackalloc

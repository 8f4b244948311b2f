#include "testing/func/margin/recursion.h"

#include <memory>
#include <string>

#include "absl/base/attributes.h"
#include "stackalloc.h"

namespace stackalloc {
namespace testing_util {

ABSL_ATTRIBUTE_NOINLINE int RecurseWhileRoom(size_t stop, MarginTrace* t) {
  volatile char pad[200];
  pad[0] = 1;
  const size_t m = StackMargin();
  if (t->depth < MarginTrace::kMax) {
    t->margin[t->depth] = m;
    t->frame[t->depth] =
        reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    ++t->depth;
  }
  if (m < stop) return 0;
  return RecurseWhileRoom(stop, t) + pad[0];  // Not a tail call.
}

std::string CheckMarginTrace(const MarginTrace& t, uintptr_t lo) {
  const std::string depth = "depth " + std::to_string(t.depth);
  if (t.depth < 2) return depth + ": the recursion never started";
  if (t.depth >= MarginTrace::kMax) return depth + ": never stopped";
  if (t.margin[t.depth - 1] >= kMarginStop) {
    return depth + ": stopped with " + std::to_string(t.margin[t.depth - 1]) +
           " bytes left";
  }
  for (int i = 0; i < t.depth; ++i) {
    std::string at = "at depth " + std::to_string(i) + " of " +
                     std::to_string(t.depth) + ": margin " +
                     std::to_string(t.margin[i]) + ", frame " +
                     std::to_string(t.frame[i] - lo) +
                     " bytes above the stack's lowest byte";
    if (t.margin[i] > t.frame[i] - lo ||
        t.frame[i] - lo - t.margin[i] >= 4096) {
      return at;
    }
    if (i + 1 < t.depth &&
        t.margin[i] - t.margin[i + 1] != t.frame[i] - t.frame[i + 1]) {
      return at + ": the margin shrank by " +
             std::to_string(t.margin[i] - t.margin[i + 1]) + ", the frame by " +
             std::to_string(t.frame[i] - t.frame[i + 1]);
    }
  }
  return "";
}

std::string RecurseAndCheck(uintptr_t lo) {
  auto t = std::make_unique<MarginTrace>();
  RecurseWhileRoom(kMarginStop, t.get());
  return CheckMarginTrace(*t, lo);
}

}  // namespace testing_util
}  // namespace stackalloc

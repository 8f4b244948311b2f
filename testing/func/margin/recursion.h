// What the margin tests share: a recursion that stops when StackMargin()
// runs low, recording what it saw at every depth, and the checks of that
// record against a stack's known lowest byte.

#ifndef TESTING_FUNC_MARGIN_RECURSION_H_
#define TESTING_FUNC_MARGIN_RECURSION_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/sanitizers.h"

namespace stackalloc {
namespace testing_util {

// What one recursion saw at each depth: the margin and the frame address.
struct MarginTrace {
  static constexpr int kMax = 100000;
  size_t margin[kMax];
  uintptr_t frame[kMax];
  int depth = 0;
};

// The margin below which the recursion stops: the room one more level needs
// with StackMargin's own frames (sanitizers add redzones and calls into
// their runtimes).
inline constexpr size_t kMarginStop =
    (sanitizer::kAsan || sanitizer::kTsan) ? 2048 : 1024;

// Recurses while StackMargin() says at least `stop` bytes are left; each
// level records its margin and frame in *t. Returns the levels below this
// one.
int RecurseWhileRoom(size_t stop, MarginTrace* t);

// "" if the recursion ran down to the stop (at least two levels), the
// margin shrank by exactly each frame's size, and at every level it was the
// distance from the frame to `lo`, the stack's known lowest byte, less at
// most a page (the frame's own bytes below its address and StackMargin's);
// else what was wrong.
std::string CheckMarginTrace(const MarginTrace& t, uintptr_t lo);

// Runs the recursion on the calling stack, whose lowest byte is `lo`, and
// checks it (CheckMarginTrace). The trace goes on the heap.
std::string RecurseAndCheck(uintptr_t lo);

}  // namespace testing_util
}  // namespace stackalloc

#endif  // TESTING_FUNC_MARGIN_RECURSION_H_

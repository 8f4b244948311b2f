// boost_fiber_example.cc: Boost.Context and Boost.Fiber on stackalloc's
// stacks. The one line that changes is the allocator.
#include <cstdio>
#include <utility>
#include <vector>

#include "boost/context/fiber.hpp"
#include "boost/fiber/all.hpp"
#include "boost_stack_allocator.h"  // stackalloc::BoostStackAllocator
#include "stats/mstats.h"           // stackalloc::ReadMemStats

int main() {
  // 64 KiB stacks, each with a guard page below it; copies are two words.
  stackalloc::BoostStackAllocator salloc(64 << 10);

  // Boost.Context: a fiber that yields once, then ends.
  int steps = 0;
  boost::context::fiber f(std::allocator_arg, salloc,
                          [&steps](boost::context::fiber&& caller) {
                            ++steps;
                            caller = std::move(caller).resume();
                            ++steps;
                            return std::move(caller);
                          });
  f = std::move(f).resume();  // To the yield.
  const unsigned long long inuse = stackalloc::ReadMemStats().stacks_inuse;
  f = std::move(f).resume();  // To the end: the stack goes back.

  // Boost.Fiber: a hundred fibers that yield to each other.
  int done = 0;
  std::vector<boost::fibers::fiber> fibers;
  for (int i = 0; i < 100; ++i) {
    fibers.emplace_back(std::allocator_arg, salloc, [&done] {
      boost::this_fiber::yield();
      ++done;
    });
  }
  for (boost::fibers::fiber& fiber : fibers) fiber.join();

  printf("context fiber: %d steps on a stack of ours (%llu bytes in use)\n",
         steps, inuse);
  printf("Boost.Fiber: %d fibers done\n", done);
  return steps == 2 && inuse >= (64 << 10) && done == 100 ? 0 : 1;
}

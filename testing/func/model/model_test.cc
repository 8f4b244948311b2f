// The randomized model test: a seeded sequence of operations run against the
// library and a trivial reference model (testing/model.h), checked after
// every step. At least a million operations per run; more on demand:
//
//   bazel test //testing/func/model:model_test
//     --test_env=MODEL_STEPS=100000000 --test_env=MODEL_SEED=12345
//   (one command)
//
// The seed is printed, and is in the failure message.

#include "testing/model.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "base/sanitizers.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

class SeededSource : public model::Source {
 public:
  explicit SeededSource(uint64_t seed) : rng_(seed) {}
  uint32_t Next() override { return static_cast<uint32_t>(rng_()); }

 private:
  std::mt19937_64 rng_;
};

int64_t EnvOr(const char* name, int64_t fallback) {
  const char* v = getenv(name);
  return v != nullptr ? std::strtoll(v, nullptr, 10) : fallback;
}

TEST(ModelTest, LibraryAgreesWithTheModelAtEveryStep) {
  // A million steps; under TSan, whose every access is slow, a third.
  const int64_t steps =
      EnvOr("MODEL_STEPS", sanitizer::kTsan ? 350000 : 1000000);
  const uint64_t seed = static_cast<uint64_t>(
      EnvOr("MODEL_SEED", static_cast<int64_t>(std::random_device{}())));
  printf("model test: seed %llu, %lld steps\n",
         static_cast<unsigned long long>(seed), static_cast<long long>(steps));
  SeededSource source(seed);
  const model::Result r = model::Run(source, steps, 4);
  printf(
      "steps %lld: allocs %lld (refused %lld), frees %lld (on another thread "
      "%lld), thread exits %lld, scavenges %lld, faults injected %lld\n",
      static_cast<long long>(r.steps), static_cast<long long>(r.allocs),
      static_cast<long long>(r.refused), static_cast<long long>(r.frees),
      static_cast<long long>(r.cross_frees),
      static_cast<long long>(r.thread_exits),
      static_cast<long long>(r.scavenges),
      static_cast<long long>(r.faults_injected));
  ASSERT_TRUE(r.ok) << r.error << " (MODEL_SEED=" << seed << ")";
  EXPECT_EQ(r.steps, steps);
  EXPECT_GT(r.refused, 0);
  EXPECT_GT(r.cross_frees, 0);
  EXPECT_GT(r.thread_exits, 0);
  EXPECT_GT(r.faults_injected, 0);
}

}  // namespace
}  // namespace stackalloc

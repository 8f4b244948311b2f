// libFuzzer drives the reference model (testing/model.h) from its bytes: each
// four bytes are the next "random" word of the operation sequence, so the
// fuzzer explores orders, sizes, thread hand-overs, exits, scavenges, limit
// changes and injected failures, and any disagreement with the model aborts
// with the step and what differed. Built with clang only:
//
//   bazel --output_base=$HOME/.cache/stackalloc-fuzz run --config=fuzz
//     //testing/fuzz:model_fuzzer -- -max_total_time=60     (one line)

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "testing/model.h"

namespace {

class BytesSource : public stackalloc::model::Source {
 public:
  BytesSource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint32_t Next() override {
    uint32_t v = 0;
    const size_t n = size_ - pos_ < 4 ? size_ - pos_ : 4;
    memcpy(&v, data_ + pos_, n);
    pos_ += n;
    return v;
  }
  bool Done() const override { return pos_ >= size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  BytesSource source(data, size);
  const stackalloc::model::Result r =
      stackalloc::model::Run(source, static_cast<int64_t>(size), 3);
  if (!r.ok) {
    fprintf(stderr, "model disagreement: %s\n", r.error.c_str());
    abort();
  }
  return 0;
}

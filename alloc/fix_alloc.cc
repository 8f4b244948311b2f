#include "alloc/fix_alloc.h"

#include "base/throw.h"

namespace stackalloc {

void FixAlloc::Init(size_t size, ChunkSource source, FirstUse first,
                    void* arg) {
  if (size < sizeof(Link) || size > kChunk || size % alignof(Link) != 0) {
    RawPrintf("FixAlloc_Init: size=%zu\n", size);
    Throw("FixAlloc_Init: bad object size");
  }
  if (source == nullptr) Throw("FixAlloc_Init: no chunk source");
  size_ = size;
  source_ = source;
  first_ = first;
  arg_ = arg;
  list_ = nullptr;
  chunk_ = nullptr;
  nchunk_ = 0;
  inuse_ = 0;
  sys_ = 0;
}

void* FixAlloc::Carve() {
  if (size_ == 0) Throw("FixAlloc: Alloc before Init");
  if (nchunk_ < size_) {
    char* chunk = static_cast<char*>(source_(arg_, kChunk));
    if (chunk == nullptr) return nullptr;
    chunk_ = chunk;
    nchunk_ = kChunk;
    sys_ += kChunk;
  }
  void* v = chunk_;
  if (first_ != nullptr) first_(arg_, v);
  chunk_ += size_;
  nchunk_ -= size_;
  inuse_ += size_;
  return v;
}

}  // namespace stackalloc

// Carves typed buffers out of the caller's workspace. The same carving code runs twice: once on
// a null base to measure the size (the *_workspace_bytes functions), once on the real memory,
// so size and layout cannot disagree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fusedrnn::cuda {

class Workspace {
 public:
  Workspace() = default;  // measuring: hands out null pointers, counts bytes
  Workspace(void* base, size_t bytes) : base_(static_cast<char*>(base)), capacity_(bytes) {}

  template <typename T>
  T* take(int64_t count) {
    const size_t at = used_;
    used_ += (static_cast<size_t>(count) * sizeof(T) + kAlign - 1) / kAlign * kAlign;
    if (!base_) return nullptr;
    if (used_ > capacity_)
      throw std::invalid_argument("fusedrnn CUDA: workspace too small: " +
                                  std::to_string(capacity_) + " bytes given, at least " +
                                  std::to_string(used_) + " needed");
    return reinterpret_cast<T*>(base_ + at);
  }
  size_t used() const { return used_; }

 private:
  static constexpr size_t kAlign = 256;  // cuBLAS's preferred alignment; vector loads too
  char* base_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
};

}  // namespace fusedrnn::cuda

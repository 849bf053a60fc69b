// A call's large scratch array (the backward's gate gradients, the whole-sequence input
// projection) from the buffer cache: the next call of the same shape reuses its pages. Its
// contents start undefined (whatever a freed block held).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

#include "fusedrnn/fusedrnn.hpp"

namespace fusedrnn::cpu {

template <typename T>
class Scratch {
 public:
  explicit Scratch(int64_t count)
      : count_(count), data_(static_cast<T*>(allocate_buffer(size_t(count) * sizeof(T)))) {}

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  int64_t size() const { return count_; }
  void fill(T value) { std::fill(data(), data() + count_, value); }

 private:
  struct Free {
    void operator()(T* p) const { free_buffer(p); }
  };

  int64_t count_;
  std::unique_ptr<T, Free> data_;
};

}  // namespace fusedrnn::cpu

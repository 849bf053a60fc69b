// The parts two threads claim in a step (csrc/cpu/part_claims.hpp): prints "case: value"
// lines for tests/test_embedding.py.
#include <cstdint>
#include <cstdio>

#include "part_claims.hpp"

namespace {

void show(const char* name, int64_t value) {
  std::printf("%s: %lld\n", name, static_cast<long long>(value));
}

}  // namespace

int main() {
  fusedrnn::cpu::PartClaims claims(5);
  // Step 0: the caller (front) takes 0 and 1, the worker (back) 4, 3 and 2; then none is left.
  show("front_0", claims.claim(0, true));
  show("back_0", claims.claim(0, false));
  show("front_1", claims.claim(0, true));
  show("back_1", claims.claim(0, false));
  show("back_2", claims.claim(0, false));
  show("front_after_all", claims.claim(0, true));
  show("back_after_all", claims.claim(0, false));
  // Step 1 has its own word: all five are there.
  int count = 0;
  while (claims.claim(1, count % 2 == 0) >= 0) ++count;
  show("step_1_parts", count);
  // Step 2 shares step 0's word: empty until refilled.
  show("step_2_before_refill", claims.claim(2, true));
  claims.refill(0);
  show("step_2_after_refill", claims.claim(2, false));
}

// Bad calls of the C++ API, one a line: prints "case: message" for each exception, so that
// tests/test_embedding.py can check that every call is rejected with its argument named
// before anything is written.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fusedrnn/fusedrnn.hpp>

namespace {

using fusedrnn::LstmProblem;

struct Lstm {
  int64_t T = 3, B = 2, I = 4, H = 5;
  std::vector<float> x = std::vector<float>(T * B * I, 0.5f);
  std::vector<float> w_ih = std::vector<float>(4 * H * I, 0.1f);
  std::vector<float> w_hh = std::vector<float>(4 * H * H, 0.1f);
  std::vector<float> y = std::vector<float>(T * B * H, -7.0f);
  std::vector<float> hn = std::vector<float>(B * H), cn = std::vector<float>(B * H);
  std::vector<int64_t> lengths = {3, 1};

  LstmProblem<float> problem() {
    LstmProblem<float> p;
    p.steps = T, p.batch = B, p.input = I, p.hidden = H, p.proj = H;
    p.x = x.data(), p.w_ih = w_ih.data(), p.w_hh = w_hh.data(), p.lengths = lengths.data();
    return p;
  }
  void forward(const LstmProblem<float>& p, const float* h0 = nullptr) {
    fusedrnn::lstm_forward<float>(p, h0, nullptr, y.data(), hn.data(), cn.data(), nullptr);
  }
};

void expect_error(const char* name, const std::function<void()>& call) {
  try {
    call();
    std::printf("%s: no error\n", name);
  } catch (const std::invalid_argument& e) {
    std::printf("%s: %s\n", name, e.what());
  }
}

}  // namespace

int main() {
  Lstm l;
  const int64_t big = std::numeric_limits<int32_t>::max();
  expect_error("ok", [&] { l.forward(l.problem()); });
  // Packed weights: the same outputs as without (up to rounding: a few rows), and refused when
  // they were packed from other arrays or with a cell's wrong gate count.
  {
    const auto packed = fusedrnn::pack_weights<float>(l.w_ih.data(), l.w_hh.data(), 4, l.H, l.I);
    auto p = l.problem();
    p.packed = packed.get();
    const auto y = l.y;
    l.forward(p);
    float most = 0;
    for (size_t i = 0; i < y.size(); ++i) most = std::max(most, std::abs(l.y[i] - y[i]));
    std::printf("packed_close: %d\n", int(most <= 1e-6f));
    const auto w_ih = l.w_ih;
    p.w_ih = w_ih.data();
    expect_error("packed_other_weights", [&] { l.forward(p); });
    expect_error("pack_gates", [&] {
      fusedrnn::pack_weights<float>(l.w_ih.data(), l.w_hh.data(), 5, l.H, l.I);
    });
    expect_error("pack_null", [&] {
      fusedrnn::pack_weights<float>(nullptr, l.w_hh.data(), 4, l.H, l.I);
    });
    expect_error("pack_w_hr_without_proj", [&] {
      fusedrnn::pack_weights<float>(l.w_ih.data(), l.w_hh.data(), 4, l.H, l.I, l.w_hh.data());
    });
  }
  for (auto* out : {&l.y, &l.hn, &l.cn}) out->assign(out->size(), -7.0f);
  expect_error("negative_steps", [&] { auto p = l.problem(); p.steps = -1; l.forward(p); });
  expect_error("rows_over_blas", [&] { auto p = l.problem(); p.steps = big; l.forward(p); });
  expect_error("gates_over_blas", [&] { auto p = l.problem(); p.hidden = big / 2; l.forward(p); });
  expect_error("bytes_overflow", [&] {
    auto p = l.problem();
    p.steps = big / 2, p.batch = 2, p.hidden = big / 4, p.proj = 0, p.input = 0;
    fusedrnn::check_sizes(p);
  });
  expect_error("proj_without_w_hr", [&] { auto p = l.problem(); p.proj = 0; l.forward(p); });
  expect_error("null_x", [&] { auto p = l.problem(); p.x = nullptr; l.forward(p); });
  expect_error("bad_lengths", [&] { l.lengths[1] = 4; l.forward(l.problem()); });
  l.lengths[1] = 1;
  expect_error("h0_is_hn", [&] { l.forward(l.problem(), l.hn.data()); });
  expect_error("y_is_x", [&] {
    fusedrnn::lstm_forward<float>(l.problem(), nullptr, nullptr, l.x.data(), l.hn.data(),
                                  l.cn.data(), nullptr);
  });
  expect_error("null_dy", [&] {
    std::vector<float> gates(l.T * l.B * 4 * l.H), c_prev(l.T * l.B * l.H), h_prev(c_prev);
    std::vector<float> dx(l.x.size()), dh0(l.hn.size()), dc0(l.cn.size());
    std::vector<float> dw_ih(l.w_ih.size()), dw_hh(l.w_hh.size());
    fusedrnn::LstmSaved<float> s{gates.data(), c_prev.data(), h_prev.data()};
    fusedrnn::LstmGrads<float> g{dx.data(), dh0.data(), dc0.data(), dw_ih.data(), dw_hh.data()};
    fusedrnn::lstm_backward<float>(l.problem(), s, nullptr, nullptr, nullptr, g);
  });
  // The rejected calls wrote nothing.
  bool untouched = true;
  for (auto* out : {&l.y, &l.hn, &l.cn})
    for (float v : *out) untouched &= v == -7.0f;
  std::printf("untouched: %d\n", int(untouched));
  return 0;
}

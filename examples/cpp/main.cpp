// One LSTM layer from C++: fusedrnn's public API, plain pointers, no Python.
// Prints y (T*B*H values, one per line) for inputs that tests/test_embedding.py rebuilds in
// NumPy to check them against the reference.
#include <cmath>
#include <cstdio>
#include <vector>

#include <fusedrnn/fusedrnn.hpp>

namespace {

// Deterministic inputs: value k of an array is scale * sin(freq * (k + 1)).
std::vector<double> wave(size_t n, double scale, double freq) {
  std::vector<double> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = scale * std::sin(freq * double(k + 1));
  return v;
}

}  // namespace

int main() {
  const int64_t T = 5, B = 3, I = 4, H = 6;
  const auto x = wave(T * B * I, 1.0, 0.1);
  const auto w_ih = wave(4 * H * I, 0.4, 0.7);
  const auto w_hh = wave(4 * H * H, 0.4, 1.3);
  const auto b_ih = wave(4 * H, 0.1, 0.5);
  const auto b_hh = wave(4 * H, 0.1, 0.9);
  const std::vector<int64_t> lengths = {5, 2, 0};

  fusedrnn::LstmProblem<double> p;
  p.steps = T, p.batch = B, p.input = I, p.hidden = H, p.proj = H;
  p.x = x.data(), p.w_ih = w_ih.data(), p.w_hh = w_hh.data();
  p.b_ih = b_ih.data(), p.b_hh = b_hh.data();
  p.lengths = lengths.data(), p.reverse = true;

  std::vector<double> y(T * B * H), hn(B * H), cn(B * H);
  fusedrnn::lstm_forward<double>(p, nullptr, nullptr, y.data(), hn.data(), cn.data(), nullptr);
  for (double v : y) std::printf("%.17g\n", v);
  return 0;
}

// Argument checks of the public entry points (see argument_checks.hpp). They cost a few
// hundred nanoseconds a call: nothing next to one time step.
#include "argument_checks.hpp"

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "packed_weights.hpp"

namespace fusedrnn {
namespace {

// A dimension with the symbolic name the messages print: {"T", 5} prints T=5.
struct Dim {
  const char* name;
  int64_t size;
};
using Shape = std::vector<Dim>;

// One array argument: its data (null when absent) and the shape it must have.
struct Arg {
  const char* name;
  const void* data;
  Shape shape;
  int64_t item_bytes;
  bool required = true;
};

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::string(shape[i].name) + "=" + std::to_string(shape[i].size);
  return s + (shape.size() == 1 ? ",)" : ")");
}

void non_negative(const char* name, int64_t size) {
  if (size < 0) fail(std::string(name) + ": expected a size >= 0, got " + std::to_string(size));
}

// Bytes of an array of this shape; an error naming it when they do not fit int64 (so that no
// size computed from them can wrap around before anything is allocated).
int64_t bytes_of(const char* name, const Shape& shape, int64_t item_bytes) {
  int64_t n = item_bytes;
  for (const Dim& d : shape) {
    if (d.size != 0 && n > std::numeric_limits<int64_t>::max() / d.size)
      fail(std::string(name) + ": sizes too large to allocate");
    n *= d.size;
  }
  return n;
}

// The BLAS takes 32-bit sizes: GEMM rows (T*B), columns (G*H) and inner sizes (I, P, H).
void fits_blas(const char* name, const char* what, int64_t size) {
  if (size > std::numeric_limits<int32_t>::max())
    fail(std::string(name) + ": " + what + " = " + std::to_string(size) +
         " exceeds the BLAS's 32-bit sizes");
}

void check_lengths(const int64_t* lengths, int64_t batch, int64_t steps) {
  if (!lengths) return;
  for (int64_t b = 0; b < batch; ++b)
    if (lengths[b] < 0 || lengths[b] > steps)
      fail("lengths: expected values in [0, T=" + std::to_string(steps) + "], got " +
           std::to_string(lengths[b]) + " at index " + std::to_string(b));
}

bool overlap(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return a_bytes > 0 && b_bytes > 0 && pa < pb + uintptr_t(b_bytes) && pb < pa + uintptr_t(a_bytes);
}

// Every required array is there; no output overlaps an input or another output (the kernels
// read inputs while they write outputs, and write outputs in parallel).
void check_arrays(const std::vector<Arg>& inputs, const std::vector<Arg>& outputs) {
  std::vector<int64_t> in_bytes, out_bytes;
  for (auto* list : {&inputs, &outputs})
    for (const Arg& a : *list) {
      const int64_t n = bytes_of(a.name, a.shape, a.item_bytes);
      if (a.required && n > 0 && !a.data)
        fail(std::string(a.name) + ": expected an array of shape " + shape_str(a.shape) +
             ", got a null pointer");
      (list == &inputs ? in_bytes : out_bytes).push_back(a.data ? n : 0);
    }
  for (size_t i = 0; i < outputs.size(); ++i) {
    bool bad = false;
    for (size_t j = 0; j < inputs.size(); ++j)
      bad |= overlap(outputs[i].data, out_bytes[i], inputs[j].data, in_bytes[j]);
    for (size_t j = i + 1; j < outputs.size(); ++j)
      bad |= overlap(outputs[i].data, out_bytes[i], outputs[j].data, out_bytes[j]);
    if (bad) fail(std::string(outputs[i].name) + ": overlaps an input or another output");
  }
}

// The arrays every pass of an LSTM reads, with the shapes that `p` gives them.
template <typename T>
std::vector<Arg> lstm_inputs(const LstmProblem<T>& p) {
  const int64_t T_ = p.steps, B = p.batch, I = p.input, H = p.hidden, P = p.proj, e = sizeof(T);
  const char* out = p.w_hr ? "P" : "H";
  return {{"x", p.x, {{"T", T_}, {"B", B}, {"I", I}}, e},
          {"w_ih", p.w_ih, {{"4*H", 4 * H}, {"I", I}}, e},
          {"w_hh", p.w_hh, {{"4*H", 4 * H}, {out, P}}, e},
          {"b_ih", p.b_ih, {{"4*H", 4 * H}}, e, false},
          {"b_hh", p.b_hh, {{"4*H", 4 * H}}, e, false},
          {"w_hr", p.w_hr, {{"P", P}, {"H", H}}, e, false},
          {"lengths", p.lengths, {{"B", B}}, sizeof(int64_t), false}};
}

template <typename T>
std::vector<Arg> lstm_saved(const LstmProblem<T>& p, const LstmSaved<T>& s) {
  const int64_t T_ = p.steps, B = p.batch, H = p.hidden, P = p.proj, e = sizeof(T);
  return {{"saved.gates", s.gates, {{"T", T_}, {"B", B}, {"4*H", 4 * H}}, e},
          {"saved.c_prev", s.c_prev, {{"T", T_}, {"B", B}, {"H", H}}, e},
          {"saved.h_prev", s.h_prev, {{"T", T_}, {"B", B}, {p.w_hr ? "P" : "H", P}}, e}};
}

template <typename T>
std::vector<Arg> gru_inputs(const GruProblem<T>& p) {
  const int64_t T_ = p.steps, B = p.batch, I = p.input, H = p.hidden, e = sizeof(T);
  return {{"x", p.x, {{"T", T_}, {"B", B}, {"I", I}}, e},
          {"w_ih", p.w_ih, {{"3*H", 3 * H}, {"I", I}}, e},
          {"w_hh", p.w_hh, {{"3*H", 3 * H}, {"H", H}}, e},
          {"b_ih", p.b_ih, {{"3*H", 3 * H}}, e, false},
          {"b_hh", p.b_hh, {{"3*H", 3 * H}}, e, false},
          {"lengths", p.lengths, {{"B", B}}, sizeof(int64_t), false}};
}

template <typename T>
std::vector<Arg> gru_saved(const GruProblem<T>& p, const GruSaved<T>& s) {
  const int64_t T_ = p.steps, B = p.batch, H = p.hidden, e = sizeof(T);
  const Dim width{p.linear_before_reset ? "4*H" : "3*H", gru_saved_width(p.linear_before_reset, H)};
  return {{"saved.gates", s.gates, {{"T", T_}, {"B", B}, width}, e},
          {"saved.h_prev", s.h_prev, {{"T", T_}, {"B", B}, {"H", H}}, e}};
}

template <typename T>
void check_projection(const LstmProblem<T>& p) {
  if (!p.w_hr && p.proj != p.hidden)
    fail("proj: expected P == H (= " + std::to_string(p.hidden) + ") without w_hr, got " +
         std::to_string(p.proj));
}

template <typename T>
void append(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

// Sizes both cells share: none negative, and the GEMMs' sizes within the BLAS's 32-bit ones:
// rows T*B (which also bounds the time loop), gate columns G*H, inner sizes I and H.
void check_common_sizes(int64_t steps, int64_t batch, int64_t input, int64_t hidden, int gates) {
  non_negative("steps", steps), non_negative("batch", batch);
  non_negative("input", input), non_negative("hidden", hidden);
  if (batch != 0 && steps > std::numeric_limits<int32_t>::max() / batch)
    fail("x: T*B = " + std::to_string(steps) + "*" + std::to_string(batch) +
         " exceeds the BLAS's 32-bit sizes");
  if (hidden > std::numeric_limits<int32_t>::max() / gates)
    fail("w_hh: " + std::to_string(gates) + "*H = " + std::to_string(gates) + "*" +
         std::to_string(hidden) + " exceeds the BLAS's 32-bit sizes");
  fits_blas("x", "I", input);
}

// A call's `packed` was packed from its own weights, for its cell and sizes (proj: P, or H
// without a projection).
template <typename T>
void check_packed(const PackedWeights<T>* w, int gates, int64_t hidden, int64_t input,
                  int64_t proj, const T* w_ih, const T* w_hh, const T* w_hr = nullptr) {
  if (!w) return;
  auto sizes = [](int g, int64_t h, int64_t i, int64_t p) {
    return "gates=" + std::to_string(g) + ", H=" + std::to_string(h) + ", I=" +
           std::to_string(i) + ", P=" + std::to_string(p);
  };
  if (w->gates != gates || w->hidden != hidden || w->input != input || w->proj != proj)
    fail("packed: expected weights packed for " + sizes(gates, hidden, input, proj) +
         ", got " + sizes(w->gates, w->hidden, w->input, w->proj));
  if ((w->w_hr != nullptr) != (w_hr != nullptr))
    fail(std::string("packed: packed ") + (w_hr ? "without" : "with") +
         " a projection (w_hr), this call has " + (w_hr ? "one" : "none"));
  if (w->w_ih != w_ih || w->w_hh != w_hh || w->w_hr != w_hr)
    fail("packed: packed from other arrays than this call's weights");
}

}  // namespace

template <typename T>
void check_sizes(const LstmProblem<T>& p) {
  check_common_sizes(p.steps, p.batch, p.input, p.hidden, 4);
  non_negative("proj", p.proj);
  fits_blas("w_hr", "P", p.proj);
  const int64_t T_ = p.steps, B = p.batch, e = sizeof(T);
  bytes_of("y", {{"T", T_}, {"B", B}, {"P", p.proj}}, e);
  bytes_of("gates", {{"T", T_}, {"B", B}, {"4*H", 4 * p.hidden}}, e);
}

template <typename T>
void check_sizes(const GruProblem<T>& p) {
  check_common_sizes(p.steps, p.batch, p.input, p.hidden, 3);
  const int64_t T_ = p.steps, B = p.batch, e = sizeof(T);
  bytes_of("y", {{"T", T_}, {"B", B}, {"H", p.hidden}}, e);
  bytes_of("gates", {{"T", T_}, {"B", B}, {"4*H", 4 * p.hidden}}, e);
}

namespace cpu {

template <typename T>
void check_forward(const LstmProblem<T>& p, const T* h0, const T* c0, const T* y, const T* hn,
                   const T* cn, const LstmSaved<T>* saved) {
  check_sizes(p);
  check_projection(p);
  const int64_t T_ = p.steps, B = p.batch, H = p.hidden, P = p.proj, e = sizeof(T);
  const char* out = p.w_hr ? "P" : "H";
  auto inputs = lstm_inputs(p);
  inputs.push_back({"h0", h0, {{"B", B}, {out, P}}, e, false});
  inputs.push_back({"c0", c0, {{"B", B}, {"H", H}}, e, false});
  std::vector<Arg> outputs = {{"y", y, {{"T", T_}, {"B", B}, {out, P}}, e},
                              {"hn", hn, {{"B", B}, {out, P}}, e},
                              {"cn", cn, {{"B", B}, {"H", H}}, e}};
  if (saved) append(outputs, lstm_saved(p, *saved));
  check_arrays(inputs, outputs);
  check_lengths(p.lengths, B, T_);
  check_packed(p.packed, 4, H, p.input, P, p.w_ih, p.w_hh, p.w_hr);
}

template <typename T>
void check_backward(const LstmProblem<T>& p, const LstmSaved<T>& saved, const T* dy,
                    const T* dhn, const T* dcn, const LstmGrads<T>& g) {
  check_sizes(p);
  check_projection(p);
  const int64_t T_ = p.steps, B = p.batch, I = p.input, H = p.hidden, P = p.proj, e = sizeof(T);
  const char* out = p.w_hr ? "P" : "H";
  auto inputs = lstm_inputs(p);
  append(inputs, lstm_saved(p, saved));
  inputs.push_back({"dy", dy, {{"T", T_}, {"B", B}, {out, P}}, e});
  inputs.push_back({"dhn", dhn, {{"B", B}, {out, P}}, e, false});
  inputs.push_back({"dcn", dcn, {{"B", B}, {"H", H}}, e, false});
  const std::vector<Arg> outputs = {
      {"dx", g.dx, {{"T", T_}, {"B", B}, {"I", I}}, e},
      {"dh0", g.dh0, {{"B", B}, {out, P}}, e},
      {"dc0", g.dc0, {{"B", B}, {"H", H}}, e},
      {"dw_ih", g.dw_ih, {{"4*H", 4 * H}, {"I", I}}, e},
      {"dw_hh", g.dw_hh, {{"4*H", 4 * H}, {out, P}}, e},
      {"db_ih", g.db_ih, {{"4*H", 4 * H}}, e, false},
      {"db_hh", g.db_hh, {{"4*H", 4 * H}}, e, false},
      {"dw_hr", g.dw_hr, {{"P", P}, {"H", H}}, e, p.w_hr != nullptr}};
  check_arrays(inputs, outputs);
  check_lengths(p.lengths, B, T_);
}

template <typename T>
void check_forward(const GruProblem<T>& p, const T* h0, const T* y, const T* hn,
                   const GruSaved<T>* saved) {
  check_sizes(p);
  const int64_t T_ = p.steps, B = p.batch, H = p.hidden, e = sizeof(T);
  auto inputs = gru_inputs(p);
  inputs.push_back({"h0", h0, {{"B", B}, {"H", H}}, e, false});
  std::vector<Arg> outputs = {{"y", y, {{"T", T_}, {"B", B}, {"H", H}}, e},
                              {"hn", hn, {{"B", B}, {"H", H}}, e}};
  if (saved) append(outputs, gru_saved(p, *saved));
  check_arrays(inputs, outputs);
  check_lengths(p.lengths, B, T_);
  check_packed(p.packed, 3, H, p.input, H, p.w_ih, p.w_hh);
  if (p.packed && p.packed->linear_before_reset != p.linear_before_reset)
    fail(std::string("packed: packed for linear_before_reset=") +
         (p.linear_before_reset ? "False" : "True") + ", this call has " +
         (p.linear_before_reset ? "True" : "False"));
}

template <typename T>
void check_backward(const GruProblem<T>& p, const GruSaved<T>& saved, const T* dy,
                    const T* dhn, const GruGrads<T>& g) {
  check_sizes(p);
  const int64_t T_ = p.steps, B = p.batch, I = p.input, H = p.hidden, e = sizeof(T);
  auto inputs = gru_inputs(p);
  append(inputs, gru_saved(p, saved));
  inputs.push_back({"dy", dy, {{"T", T_}, {"B", B}, {"H", H}}, e});
  inputs.push_back({"dhn", dhn, {{"B", B}, {"H", H}}, e, false});
  const std::vector<Arg> outputs = {{"dx", g.dx, {{"T", T_}, {"B", B}, {"I", I}}, e},
                                    {"dh0", g.dh0, {{"B", B}, {"H", H}}, e},
                                    {"dw_ih", g.dw_ih, {{"3*H", 3 * H}, {"I", I}}, e},
                                    {"dw_hh", g.dw_hh, {{"3*H", 3 * H}, {"H", H}}, e},
                                    {"db_ih", g.db_ih, {{"3*H", 3 * H}}, e, false},
                                    {"db_hh", g.db_hh, {{"3*H", 3 * H}}, e, false}};
  check_arrays(inputs, outputs);
  check_lengths(p.lengths, B, T_);
}

#define FUSEDRNN_CHECKS(T)                                                                       \
  template void check_forward<T>(const LstmProblem<T>&, const T*, const T*, const T*, const T*, \
                                 const T*, const LstmSaved<T>*);                                \
  template void check_backward<T>(const LstmProblem<T>&, const LstmSaved<T>&, const T*,        \
                                  const T*, const T*, const LstmGrads<T>&);                    \
  template void check_forward<T>(const GruProblem<T>&, const T*, const T*, const T*,           \
                                 const GruSaved<T>*);                                           \
  template void check_backward<T>(const GruProblem<T>&, const GruSaved<T>&, const T*,          \
                                  const T*, const GruGrads<T>&);
FUSEDRNN_CHECKS(float)
FUSEDRNN_CHECKS(double)
#undef FUSEDRNN_CHECKS

// pack_weights' arguments: a cell's gate count, sizes within the BLAS's, the weights there.
template <typename T>
void check_packing(const T* w_ih, const T* w_hh, const T* w_hr, int gates, int64_t hidden,
                   int64_t input, int64_t proj, bool linear_before_reset) {
  if (gates != 3 && gates != 4)
    fail("gates: expected 3 (GRU) or 4 (LSTM), got " + std::to_string(gates));
  if (!linear_before_reset && gates != 3)
    fail("linear_before_reset: False is for a GRU (gates = 3) only");
  if (w_hr && gates != 4) fail("w_hr: a projection is for an LSTM (gates = 4) only");
  if (w_hr && proj < 1) fail("proj: expected P >= 1 with w_hr, got " + std::to_string(proj));
  check_common_sizes(1, 1, input, hidden, gates);
  non_negative("proj", proj);
  fits_blas("w_hr", "P", proj);
  const std::string g = std::to_string(gates) + "*H";
  const char* out = w_hr ? "P" : "H";
  check_arrays({{"w_ih", w_ih, {{g.c_str(), gates * hidden}, {"I", input}}, sizeof(T)},
                {"w_hh", w_hh, {{g.c_str(), gates * hidden}, {out, proj}}, sizeof(T)},
                {"w_hr", w_hr, {{"P", proj}, {"H", hidden}}, sizeof(T), false}},
               {});
}
template void check_packing<float>(const float*, const float*, const float*, int, int64_t,
                                   int64_t, int64_t, bool);
template void check_packing<double>(const double*, const double*, const double*, int, int64_t,
                                    int64_t, int64_t, bool);

}  // namespace cpu

template void check_sizes<float>(const LstmProblem<float>&);
template void check_sizes<double>(const LstmProblem<double>&);
template void check_sizes<float>(const GruProblem<float>&);
template void check_sizes<double>(const GruProblem<double>&);

}  // namespace fusedrnn

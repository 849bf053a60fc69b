#include "blas.hpp"

#include <algorithm>
#include <climits>
#include <stdexcept>

#include <cblas.h>

#include "thread_team.hpp"

namespace fusedrnn::cpu {
namespace {

void use_one_blas_thread() {
  static const bool once = [] {
    scipy_openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

blasint to_blas(int64_t v) {
  if (v > INT_MAX) throw std::length_error("fusedrnn: a matrix dimension exceeds 2^31 - 1");
  return static_cast<blasint>(v);
}

void call_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
               const float* a, blasint lda, const float* b, blasint ldb, float beta, float* c,
               blasint ldc) {
  scipy_cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

void call_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
               const double* a, blasint lda, const double* b, blasint ldb, double beta,
               double* c, blasint ldc) {
  scipy_cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

void call_gemv(CBLAS_TRANSPOSE t, blasint m, blasint n, const float* a, blasint lda,
               const float* x, float beta, float* y) {
  scipy_cblas_sgemv(CblasRowMajor, t, m, n, 1.0f, a, lda, x, 1, beta, y, 1);
}

void call_gemv(CBLAS_TRANSPOSE t, blasint m, blasint n, const double* a, blasint lda,
               const double* x, double beta, double* y) {
  scipy_cblas_dgemv(CblasRowMajor, t, m, n, 1.0, a, lda, x, 1, beta, y, 1);
}

}  // namespace

template <typename T>
void gemv(bool trans, int64_t m, int64_t n, const T* a, int64_t lda, const T* x, T beta, T* y) {
  const int64_t out = trans ? n : m, in = trans ? m : n;
  if (out == 0) return;
  use_one_blas_thread();
  if (in == 0) {
    for (int64_t r = 0; r < out; ++r) y[r] = beta == T(0) ? T(0) : beta * y[r];
    return;
  }
  call_gemv(trans ? CblasTrans : CblasNoTrans, to_blas(m), to_blas(n), a,
            to_blas(std::max<int64_t>(lda, 1)), x, beta, y);
}

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  use_one_blas_thread();
  if (k == 0) {
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < n; ++j) c[r * ldc + j] = beta == T(0) ? T(0) : beta * c[r * ldc + j];
    return;
  }
  call_gemm(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
            to_blas(m), to_blas(n), to_blas(k), a, to_blas(std::max<int64_t>(lda, 1)), b,
            to_blas(std::max<int64_t>(ldb, 1)), beta, c, to_blas(std::max<int64_t>(ldc, 1)));
}

int threads_for(int max_threads) {
  const int team = team_size();
  return max_threads > 0 ? std::min(max_threads, team) : team;
}

template <typename T>
void parallel_gemm(int max_threads, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                   const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
                   const T* c_row) {
  for (int64_t v : {m, n, k, lda, ldb, ldc}) to_blas(v);  // throw here, not in a worker
  // Blocks of rows that depend on m and the machine alone, dealt round-robin: every block is
  // the same BLAS call whatever the thread count, so the results are bitwise identical for any
  // number of threads (the BLAS may sum a product of another shape in another order). One
  // block a core, as few as that allows: each block's call packs all of B again. Six blocks
  // on the 2-core AVX-512 machine spent 12 % of LSTM backward 100x16x256 in the BLAS's packing;
  // two made it 5-6 % faster (min 8.91 -> 8.36 ms; 100x64x512 126.8 -> 121.3), and the
  // whole-sequence projection too (LSTM inference 50x32x1024 63.8 -> 60.1 ms).
  const int64_t cores = machine_cores();
  const int64_t block_rows = std::max<int64_t>(64, ((m + cores - 1) / cores + 15) / 16 * 16);
  const int64_t blocks = (m + block_rows - 1) / block_rows;
  const int threads = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(threads_for(max_threads), n * k < 4096 ? 1 : blocks)));
  auto run = [&](int tid, SpinBarrier&) {
    for (int64_t blk = tid; blk < blocks; blk += threads) {
      const int64_t r0 = blk * block_rows, rows = std::min(block_rows, m - r0);
      const T* a_rows = trans_a ? a + r0 : a + r0 * lda;
      if (c_row)
        for (int64_t r = r0; r < r0 + rows; ++r) std::copy(c_row, c_row + n, c + r * ldc);
      gemm<T>(trans_a, trans_b, rows, n, k, a_rows, lda, b, ldb, c_row ? T(1) : beta,
              c + r0 * ldc, ldc);
    }
  };
  parallel_run(threads, run);
}

template void gemv<float>(bool, int64_t, int64_t, const float*, int64_t, const float*, float,
                          float*);
template void gemv<double>(bool, int64_t, int64_t, const double*, int64_t, const double*, double,
                           double*);
template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);
template void parallel_gemm<float>(int, bool, bool, int64_t, int64_t, int64_t, const float*,
                                   int64_t, const float*, int64_t, float, float*, int64_t,
                                   const float*);
template void parallel_gemm<double>(int, bool, bool, int64_t, int64_t, int64_t, const double*,
                                    int64_t, const double*, int64_t, double, double*, int64_t,
                                    const double*);

}  // namespace fusedrnn::cpu

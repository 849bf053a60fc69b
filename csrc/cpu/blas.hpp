// GEMM glue over the BLAS of scipy-openblas32 (the one NumPy and SciPy ship with).
// Row-major throughout, like every array in fusedrnn. The BLAS runs single-threaded: our
// thread team splits the large GEMMs itself (parallel_gemm), so that two thread pools never
// compete for the same cores, and its workers never spin while the time loop runs.
#pragma once

#include <cstdint>

namespace fusedrnn::cpu {

// C[M, N] = op(A) @ op(B) + beta * C, where op(A) is [M, K] (A^T when trans_a) and op(B) is
// [K, N] (B^T when trans_b); lda, ldb, ldc are row strides. K == 0 scales C by beta (BLAS
// would reject the zero leading dimensions such a product has). Sizes beyond 32-bit BLAS
// integers throw std::length_error.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// y = op(A) @ x + beta * y for A [m, n] with row stride lda, op(A) = A (y [m], x [n]) or A^T
// when trans (y [n], x [m]): a matrix-vector product, for one row far cheaper than gemm, which
// packs A first.
template <typename T>
void gemv(bool trans, int64_t m, int64_t n, const T* a, int64_t lda, const T* x, T beta, T* y);

// The same product, its rows of C split across the thread team (for the once-per-call GEMMs),
// on at most max_threads threads (0: the whole team). c_row, when not null, is what every row
// of C starts as (a bias; beta is then 1), written by the thread that computes the row.
template <typename T>
void parallel_gemm(int max_threads, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                   const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
                   const T* c_row = nullptr);

// The team size, capped by max_threads when it is positive.
int threads_for(int max_threads);

}  // namespace fusedrnn::cpu

// Sparse sketches (linalg/sketch/_sparse_sketches.py) on the GPU: CountSketch and
// the sparse sign sketch. Two kernels:
//
// 1. linalg_sketch_hashes: the rows and signs of S's columns, one thread per
//    column. Non-zero t of column j is stream element (start + j) nnz + t: its
//    sign the Rademacher bit, its row by Floyd's sampling without replacement
//    from the float64 uniform, exactly as the NumPy reference computes them.
//    A thread checks its candidate against the rows it already wrote for its
//    column, so any nnz works without a per-thread buffer.
// 2. linalg_sketch_scatter_{f32,f64}: out (d x k, zeroed) += v A[j] at row
//    rows[j, t], for a C-ordered (n, k) A. A block of 32 x 8 threads takes 8
//    rows of A at a time, a warp reading one row of A in coalesced 32-element
//    pieces, and adds into out with atomicAdd (native for float and, from
//    sm_60, double).
//
// Why atomics and two passes: the hashes cost 12 bytes per non-zero against
// the k (4 or 8)-byte entries of A read per non-zero, a few percent of the
// traffic for k of a few tens and up; atomics keep the one pass over A without
// per-block (d, k) partial buffers, which do not fit in shared memory for
// useful d k. The price: the order of the additions into an entry of out varies
// from run to run, so S @ A agrees with the reference to rounding (1e-10 in
// float64, 1e-4 in float32 relative), not bit for bit; the hashes, and so S
// itself, are bit for bit.

#include "philox.cuh"

extern "C" __global__ void linalg_sketch_hashes(long long* rows, double* signs, long long m,
                                                int nnz, long long d, unsigned long long start,
                                                unsigned int k0, unsigned int k1,
                                                unsigned int s0, unsigned int s1) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x; j < m; j += stride) {
        long long* column_rows = rows + j * nnz;
        const unsigned long long first = (start + (unsigned long long)j) * nnz;
        for (int t = 0; t < nnz; ++t) {
            const linalg_random::Words w = linalg_random::philox(first + t, k0, k1, s0, s1);
            signs[j * nnz + t] = linalg_random::rademacher(w);
            const long long top = d - nnz + t;
            long long candidate = (long long)__dmul_rn(linalg_random::uniform_f64(w),
                                                       (double)(top + 1));
            candidate = candidate < top ? candidate : top;
            for (int previous = 0; previous < t; ++previous) {
                if (column_rows[previous] == candidate) {
                    candidate = top;
                    break;
                }
            }
            column_rows[t] = candidate;
        }
    }
}

template <typename T>
__device__ __forceinline__ void sketch_scatter(const T* A, long long n, long long k,
                                               const long long* rows, const double* signs,
                                               int nnz, double scale, T* out) {
    const long long stride = (long long)gridDim.x * blockDim.y;
    for (long long j = (long long)blockIdx.x * blockDim.y + threadIdx.y; j < n; j += stride) {
        const T* row = A + j * k;
        for (int t = 0; t < nnz; ++t) {
            T* target = out + rows[j * nnz + t] * k;
            const T value = (T)(signs[j * nnz + t] * scale);
            for (long long c = threadIdx.x; c < k; c += blockDim.x) {
                atomicAdd(target + c, value * row[c]);
            }
        }
    }
}

extern "C" __global__ void linalg_sketch_scatter_f32(const float* A, long long n, long long k,
                                                     const long long* rows, const double* signs,
                                                     int nnz, double scale, float* out) {
    sketch_scatter(A, n, k, rows, signs, nnz, scale, out);
}

extern "C" __global__ void linalg_sketch_scatter_f64(const double* A, long long n, long long k,
                                                     const long long* rows, const double* signs,
                                                     int nnz, double scale, double* out) {
    sketch_scatter(A, n, k, rows, signs, nnz, scale, out);
}

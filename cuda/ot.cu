// Entropic OT (linalg/ot/_dual.py's "ot.kernels") on the GPU. Four kernels, each
// in float32 and float64:
//
// 1. linalg_ot_lse_{f32,f64}: out[k, i] = log sum_j exp(x[k, j] - K[k, i, j]) for
//    the members k in ks, K of shape (1, r, c) (shared) or (batch, r, c), C-ordered.
//    The Sinkhorn half-step u = log a - lse(K, v) is this kernel plus an O(r)
//    subtraction; the column half-step v = log b - lse(K^T, u) runs the same
//    kernel on the solver's contiguous K^T (a strided read of K down its columns
//    would not coalesce). One pass over a row: blockDim.x lanes of a block take
//    the row's entries j = lane, lane + blockDim.x, ... (coalesced) and keep an
//    online (maximum, sum of exp(z - maximum)) pair in registers; the pairs are
//    then merged in shared memory, a tree of log2(blockDim.x) steps. blockDim.y
//    rows share a block when rows are short. Exponents are exact libm exp/expf
//    (no fast math), so the result equals the reference's to rounding.
// 2. linalg_ot_count_{f32,f64}: counts[i] = #{j : P[i, j] >= theta[i]}, the row
//    lengths of the mass-budget (or top-k threshold) sparsification for SNS.
// 3. linalg_ot_fill_{f32,f64}: given indptr (the exclusive scan of counts, done
//    by CuPy), writes the CSR column indices and values of the kept entries in
//    increasing column order: the row is read in chunks of blockDim.x entries,
//    each chunk's keep flags are scanned in shared memory to give every kept
//    entry its slot.
// 4. linalg_ot_kth_{f32,f64}: theta[i] = the k-th largest entry of row i of P (the
//    top-k threshold of SNS), without sorting: for entries >= 0 the order of the
//    values is the order of their bit patterns as unsigned integers, so the k-th
//    largest is the largest pattern t with #{j : P[i, j] >= t} >= k, built bit by
//    bit from the top (below the sign bit): a bit is kept when the row still has k
//    entries >= the pattern with it set. One counting pass over the row per bit,
//    31 (float) or 63 (double), each a block reduction as in ot_count; patterns
//    above +inf are NaN, which no entry reaches. Needs P >= 0 and 1 <= k <= m.
//
// Launch: blockDim.x a power of two, blockDim.x * blockDim.y <= LINALG_OT_THREADS,
// grid-stride over the rows (every thread of a block runs the same number of
// loop trips, so the __syncthreads() calls are never divergent).

#define LINALG_OT_THREADS 256

template <typename T>
struct LseState {
    T top;  // the largest z seen (-inf before any finite one)
    T sum;  // sum of exp(z - top) over the z seen
};

// -inf, spelled with bit patterns (NVRTC defines no INFINITY macro).
template <typename T>
__device__ __forceinline__ T ot_neg_inf();
template <>
__device__ __forceinline__ float ot_neg_inf<float>() { return __int_as_float(0xff800000); }
template <>
__device__ __forceinline__ double ot_neg_inf<double>() {
    return __longlong_as_double(0xfff0000000000000LL);
}

__device__ __forceinline__ float ot_exp(float z) { return expf(z); }
__device__ __forceinline__ double ot_exp(double z) { return exp(z); }
__device__ __forceinline__ float ot_log(float z) { return logf(z); }
__device__ __forceinline__ double ot_log(double z) { return log(z); }

// Adds exp(z) to the state: a new maximum rescales the sum (rare along a row).
template <typename T>
__device__ __forceinline__ void lse_push(LseState<T>& s, T z) {
    if (z > s.top) {
        s.sum = s.sum * ot_exp(s.top - z) + (T)1;
        s.top = z;
    } else if (z > ot_neg_inf<T>()) {
        s.sum += ot_exp(z - s.top);
    }
}

// The state of the union of the two sets of z (-inf maxima carry no mass).
template <typename T>
__device__ __forceinline__ LseState<T> lse_merge(LseState<T> a, LseState<T> b) {
    if (b.top > a.top) {
        LseState<T> t = a;
        a = b;
        b = t;
    }
    if (b.top > ot_neg_inf<T>()) a.sum += b.sum * ot_exp(b.top - a.top);
    return a;
}

template <typename T>
__device__ __forceinline__ void ot_lse(const T* K, bool shared, const T* x, const long long* ks,
                                       long long nks, long long r, long long c, T* out) {
    __shared__ T tops[LINALG_OT_THREADS];
    __shared__ T sums[LINALG_OT_THREADS];
    const unsigned lane = threadIdx.x, slot = threadIdx.y * blockDim.x + threadIdx.x;
    const long long total = nks * r;
    const long long stride = (long long)gridDim.x * blockDim.y;
    for (long long first = (long long)blockIdx.x * blockDim.y; first < total; first += stride) {
        const long long t = first + threadIdx.y;
        LseState<T> s{ot_neg_inf<T>(), (T)0};
        long long k = 0, i = 0;
        if (t < total) {
            k = ks[t / r];
            i = t % r;
            const T* Ki = K + ((shared ? 0 : k) * r + i) * c;
            const T* xk = x + k * c;
            for (long long j = lane; j < c; j += blockDim.x) lse_push(s, xk[j] - Ki[j]);
        }
        tops[slot] = s.top;
        sums[slot] = s.sum;
        __syncthreads();
        for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
            if (lane < half) {
                const LseState<T> merged = lse_merge(LseState<T>{tops[slot], sums[slot]},
                                                     LseState<T>{tops[slot + half],
                                                                 sums[slot + half]});
                tops[slot] = merged.top;
                sums[slot] = merged.sum;
            }
            __syncthreads();
        }
        if (lane == 0 && t < total) out[k * r + i] = tops[slot] + ot_log(sums[slot]);
        __syncthreads();
    }
}

// The number of entries of the row Pi (m entries; null for a block's padding row) that are
// >= bound, summed over the row's blockDim.x lanes in partial: every lane returns it.
template <typename T>
__device__ __forceinline__ long long ot_row_count(const T* Pi, long long m, T bound,
                                                  long long* partial) {
    const unsigned lane = threadIdx.x, slot = threadIdx.y * blockDim.x + threadIdx.x;
    long long kept = 0;
    if (Pi)
        for (long long j = lane; j < m; j += blockDim.x) kept += (Pi[j] >= bound);
    partial[slot] = kept;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (lane < half) partial[slot] += partial[slot + half];
        __syncthreads();
    }
    kept = partial[slot - lane];
    __syncthreads();  // partial is free again
    return kept;
}

// counts[i] = the number of j with P[i, j] >= theta[i]; one row per blockDim.x lanes.
template <typename T>
__device__ __forceinline__ void ot_count(const T* P, long long n, long long m, const T* theta,
                                         long long* counts) {
    __shared__ long long partial[LINALG_OT_THREADS];
    const long long stride = (long long)gridDim.x * blockDim.y;
    for (long long first = (long long)blockIdx.x * blockDim.y; first < n; first += stride) {
        const long long i = first + threadIdx.y;
        const bool live = i < n;
        const long long kept =
            ot_row_count(live ? P + i * m : nullptr, m, live ? theta[i] : (T)0, partial);
        if (threadIdx.x == 0 && live) counts[i] = kept;
    }
}

// The kept entries of each row into CSR slots indptr[i], ..., in column order.
template <typename T>
__device__ __forceinline__ void ot_fill(const T* P, long long n, long long m, const T* theta,
                                        const long long* indptr, long long* indices, T* data) {
    __shared__ long long scan[2][LINALG_OT_THREADS];
    const unsigned lane = threadIdx.x, row0 = threadIdx.y * blockDim.x;
    const long long stride = (long long)gridDim.x * blockDim.y;
    for (long long first = (long long)blockIdx.x * blockDim.y; first < n; first += stride) {
        const long long i = first + threadIdx.y;
        const bool live = i < n;
        const T* Pi = P + (live ? i : 0) * m;
        const T bound = live ? theta[i] : (T)0;
        long long at = live ? indptr[i] : 0;
        for (long long base = 0; base < m; base += blockDim.x) {
            const long long j = base + lane;
            const bool keep = live && j < m && Pi[j] >= bound;
            // Inclusive Hillis-Steele scan of the keep flags, ping-ponging two buffers.
            int from = 0;
            scan[0][row0 + lane] = keep;
            __syncthreads();
            for (unsigned step = 1; step < blockDim.x; step *= 2) {
                const long long add = lane >= step ? scan[from][row0 + lane - step] : 0;
                scan[1 - from][row0 + lane] = scan[from][row0 + lane] + add;
                from = 1 - from;
                __syncthreads();
            }
            if (keep) {
                const long long to = at + scan[from][row0 + lane] - 1;
                indices[to] = j;
                data[to] = Pi[j];
            }
            at += scan[from][row0 + blockDim.x - 1];
            __syncthreads();
        }
    }
}

// The unsigned integer with the bits of a T, and the T with given bits.
template <typename T>
struct OtBits;
template <>
struct OtBits<float> {
    typedef unsigned int U;
};
template <>
struct OtBits<double> {
    typedef unsigned long long U;
};
__device__ __forceinline__ float ot_from_bits(unsigned int b) { return __int_as_float((int)b); }
__device__ __forceinline__ double ot_from_bits(unsigned long long b) {
    return __longlong_as_double((long long)b);
}

// theta[i] = the k-th largest of the (non-negative) entries of row i.
template <typename T>
__device__ __forceinline__ void ot_kth(const T* P, long long n, long long m, long long k,
                                       T* theta) {
    typedef typename OtBits<T>::U U;
    __shared__ long long partial[LINALG_OT_THREADS];
    const long long stride = (long long)gridDim.x * blockDim.y;
    for (long long first = (long long)blockIdx.x * blockDim.y; first < n; first += stride) {
        const long long i = first + threadIdx.y;
        const T* Pi = i < n ? P + i * m : nullptr;
        U prefix = 0;
        for (int bit = (int)(8 * sizeof(T)) - 2; bit >= 0; --bit) {
            const U candidate = prefix | ((U)1 << bit);
            if (ot_row_count(Pi, m, ot_from_bits(candidate), partial) >= k) prefix = candidate;
        }
        if (threadIdx.x == 0 && Pi) theta[i] = ot_from_bits(prefix);
    }
}

#define LINALG_OT_KERNELS(T, SUFFIX)                                                             \
    extern "C" __global__ void linalg_ot_lse_##SUFFIX(const T* K, int shared, const T* x,         \
                                                      const long long* ks, long long nks,         \
                                                      long long r, long long c, T* out) {         \
        ot_lse(K, shared != 0, x, ks, nks, r, c, out);                                           \
    }                                                                                            \
    extern "C" __global__ void linalg_ot_count_##SUFFIX(const T* P, long long n, long long m,      \
                                                        const T* theta, long long* counts) {      \
        ot_count(P, n, m, theta, counts);                                                        \
    }                                                                                            \
    extern "C" __global__ void linalg_ot_fill_##SUFFIX(const T* P, long long n, long long m,       \
                                                       const T* theta, const long long* indptr,   \
                                                       long long* indices, T* data) {             \
        ot_fill(P, n, m, theta, indptr, indices, data);                                          \
    }                                                                                            \
    extern "C" __global__ void linalg_ot_kth_##SUFFIX(const T* P, long long n, long long m,        \
                                                      long long k, T* theta) {                    \
        ot_kth(P, n, m, k, theta);                                                               \
    }

LINALG_OT_KERNELS(float, f32)
LINALG_OT_KERNELS(double, f64)

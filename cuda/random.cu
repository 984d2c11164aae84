// The counter-based random stream of linalg._core.random: one fill kernel per
// output type. Element j of `out` is stream element offset + j through the
// transform `kind` (0 uniform float64, 1 uniform float32, 2 normal, 3 Rademacher),
// bit for bit the numbers of the NumPy reference (see philox.cuh).
//
// A grid-stride loop: any launch shape gives the same numbers, since each
// element depends on its index alone.

#include "philox.cuh"

template <typename T>
__device__ __forceinline__ void stream_fill(T* out, long long size, int kind, unsigned int k0,
                                            unsigned int k1, unsigned int s0, unsigned int s1,
                                            unsigned long long offset) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x; j < size; j += stride) {
        out[j] = (T)linalg_random::element(kind, offset + (unsigned long long)j, k0, k1, s0, s1);
    }
}

extern "C" __global__ void linalg_stream_fill_f32(float* out, long long size, int kind,
                                                  unsigned int k0, unsigned int k1,
                                                  unsigned int s0, unsigned int s1,
                                                  unsigned long long offset) {
    stream_fill(out, size, kind, k0, k1, s0, s1, offset);
}

extern "C" __global__ void linalg_stream_fill_f64(double* out, long long size, int kind,
                                                  unsigned int k0, unsigned int k1,
                                                  unsigned int s0, unsigned int s1,
                                                  unsigned long long offset) {
    stream_fill(out, size, kind, k0, k1, s0, s1, offset);
}

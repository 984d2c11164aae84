// Counter-based random stream of linalg._core.random, on the GPU.
//
// Element i of stream s under seed k is Philox4x32-10 (Salmon et al., SC 2011)
// of the counter (i_lo, i_hi, s_lo, s_hi) under the key (k_lo, k_hi); its four
// 32-bit words become one uniform, normal or Rademacher number. Every function
// here does the IEEE operations of the NumPy reference in the same order, so the
// bits match the "reference" and "numba" engines:
//
// - products go through __dmul_rn, sums through __dadd_rn / __dsub_rn: these are
//   never contracted into fused multiply-adds, whatever -fmad says (the loader
//   compiles with --fmad=false as well; no fast-math);
// - the logarithm is computed here from + - * / and frexp (a library log may
//   differ in the last bit), AS241 from + - * / and sqrt (both correctly rounded);
// - every constant is the hexadecimal spelling of the Python float (the tests
//   compare them with linalg/_core/random.py).
//
// Included by the kernel sources of cuda/; the loader inlines it before NVRTC.

#pragma once

namespace linalg_random {

struct Words {
    unsigned int w0, w1, w2, w3;
};

// Philox4x32-10 words of stream element `index`.
__device__ __forceinline__ Words philox(unsigned long long index, unsigned int k0,
                                        unsigned int k1, unsigned int s0, unsigned int s1) {
    unsigned int c0 = (unsigned int)(index & 0xFFFFFFFFull);
    unsigned int c1 = (unsigned int)(index >> 32);
    unsigned int c2 = s0, c3 = s1;
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        const unsigned int hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        const unsigned int hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return Words{c0, c1, c2, c3};
}

// (k + 1/2) 2**-52 with k the top 26 bits of w0 then the top 26 bits of w1.
__device__ __forceinline__ double uniform_f64(Words w) {
    const unsigned long long bits =
        (unsigned long long)(w.w0 >> 6) * 67108864ull + (unsigned long long)(w.w1 >> 6);
    return __dmul_rn(__dadd_rn((double)bits, 0.5), 0x1p-52);
}

// (k + 1/2) 2**-23 with k the top 23 bits of w0 (exact in float).
__device__ __forceinline__ float uniform_f32(Words w) {
    return (float)__dmul_rn(__dadd_rn((double)(w.w0 >> 9), 0.5), 0x1p-23);
}

// +1 where the lowest bit of w0 is 0, else -1.
__device__ __forceinline__ double rademacher(Words w) { return (w.w0 & 1u) ? -1.0 : 1.0; }

// The polynomial with coefficients c[0..n-1] (highest degree first) at x.
template <int N>
__device__ __forceinline__ double horner(double x, const double (&c)[N]) {
    double value = c[0];
#pragma unroll
    for (int i = 1; i < N; ++i) value = __dadd_rn(__dmul_rn(value, x), c[i]);
    return value;
}

// 2 / k for k = 21, 19, ..., 3: the series of 2 atanh(s) / s**3 in s**2.
__device__ const double ATANH_SERIES[10] = {
    0x1.8618618618618p-4, 0x1.af286bca1af28p-4, 0x1.e1e1e1e1e1e1ep-4, 0x1.1111111111111p-3,
    0x1.3b13b13b13b14p-3, 0x1.745d1745d1746p-3, 0x1.c71c71c71c71cp-3, 0x1.2492492492492p-2,
    0x1.999999999999ap-2, 0x1.5555555555555p-1};
constexpr double SQRT_HALF = 0x1.6a09e667f3bcdp-1;
constexpr double LN2_HI = 0x1.62e42fee00000p-1;
constexpr double LN2_LO = 0x1.a39ef35793c76p-33;

// log(m 2**e) for m in [sqrt(1/2), sqrt(2)): 2 atanh(s) with s = f / (2 + f), f = m - 1.
__device__ __forceinline__ double log_reduced(double m, double e) {
    const double f = __dsub_rn(m, 1.0);
    const double s = __ddiv_rn(f, __dadd_rn(2.0, f));
    const double z = __dmul_rn(s, s);
    const double series = __dmul_rn(z, horner(z, ATANH_SERIES));
    const double half_f2 = __dmul_rn(__dmul_rn(0.5, f), f);
    const double inner = __dadd_rn(__dmul_rn(s, __dadd_rn(half_f2, series)), __dmul_rn(e, LN2_LO));
    return __dsub_rn(__dmul_rn(e, LN2_HI), __dsub_rn(__dsub_rn(half_f2, inner), f));
}

// Natural logarithm of a positive finite x.
__device__ __forceinline__ double log_exact(double x) {
    int e;
    double m = frexp(x, &e);
    if (m < SQRT_HALF) {
        m = __dmul_rn(2.0, m);
        e -= 1;
    }
    return log_reduced(m, (double)e);
}

// Wichura, AS 241 (PPND16), Applied Statistics 37 (1988): coefficients highest first.
constexpr double CENTRAL_LIMIT = 0x1.b333333333333p-2;
constexpr double CENTRAL_R = 0x1.71eb851eb851fp-3;
__device__ const double CENTRAL_NUM[8] = {
    0x1.39a296f7d925ep+11, 0x1.052d26b2e45e4p+15, 0x1.06c1c55b78f20p+16, 0x1.66c3e869b752ap+15,
    0x1.ad1d8cd4ee71dp+13, 0x1.ece5d2213c0ccp+10, 0x1.0a4888b1a436ep+7,  0x1.b18d91e9eef75p+1};
__device__ const double CENTRAL_DEN[8] = {
    0x1.46a7eca984a16p+12, 0x1.c0e457cb1ae76p+14, 0x1.3317caa64f4bep+15, 0x1.4b772d5d65266p+14,
    0x1.512322e75c89fp+12, 0x1.5797efdc8b3f7p+9,  0x1.5281b386e1ab5p+5,  0x1.0000000000000p+0};
constexpr double NEAR_LIMIT = 0x1.4000000000000p+2;
constexpr double NEAR_SHIFT = 0x1.999999999999ap+0;
__device__ const double NEAR_NUM[8] = {
    0x1.9615ac0b7ace9p-11, 0x1.744eb6c45ec67p-6, 0x1.ef2abb9b85c37p-3, 0x1.453cc085375b2p+0,
    0x1.d2ecb1a3d02c4p+1,  0x1.713f71462256ap+2, 0x1.2857748cab19bp+2, 0x1.6c665fde9526ap+0};
__device__ const double NEAR_DEN[8] = {
    0x1.20d3f686439e4p-30, 0x1.1f18cbfdf2728p-11, 0x1.f207a7eab17bfp-7, 0x1.2f5123394f040p-3,
    0x1.61292f23385c9p-1,  0x1.ad278e6526633p+0,  0x1.06cefbb46a449p+1, 0x1.0000000000000p+0};
constexpr double FAR_SHIFT = 0x1.4000000000000p+2;
__device__ const double FAR_NUM[8] = {
    0x1.afb74d693bf93p-23, 0x1.c6ec6cc59e02ap-16, 0x1.45c1908425345p-10, 0x1.b2b41193b4ee7p-6,
    0x1.2fad9315255cfp-2,  0x1.c8ea6461fa445p+0,  0x1.5daea6e875003p+2,  0x1.aa1b1c13ee526p+2};
__device__ const double FAR_DEN[8] = {
    0x1.269bff1f8c190p-49, 0x1.31446f740b9e0p-23, 0x1.35c2c496374bfp-16, 0x1.9c8bc979dc5d7p-11,
    0x1.e76f93215462ap-7,  0x1.186eb183443fbp-3,  0x1.331d34fc7d77fp-1,  0x1.0000000000000p+0};

// Inverse standard normal CDF of p in (0, 1).
__device__ __forceinline__ double ppnd(double p) {
    const double q = __dsub_rn(p, 0.5);
    if (fabs(q) <= CENTRAL_LIMIT) {
        const double r = __dsub_rn(CENTRAL_R, __dmul_rn(q, q));
        return __ddiv_rn(__dmul_rn(q, horner(r, CENTRAL_NUM)), horner(r, CENTRAL_DEN));
    }
    double r = __dsqrt_rn(-log_exact(q < 0.0 ? p : __dsub_rn(1.0, p)));
    double value;
    if (r <= NEAR_LIMIT) {
        r = __dsub_rn(r, NEAR_SHIFT);
        value = __ddiv_rn(horner(r, NEAR_NUM), horner(r, NEAR_DEN));
    } else {
        r = __dsub_rn(r, FAR_SHIFT);
        value = __ddiv_rn(horner(r, FAR_NUM), horner(r, FAR_DEN));
    }
    return q < 0.0 ? -value : value;
}

__device__ __forceinline__ double normal(Words w) { return ppnd(uniform_f64(w)); }

// The transforms by number, as linalg._core.random names them.
enum Kind { UNIFORM64 = 0, UNIFORM32 = 1, NORMAL = 2, RADEMACHER = 3 };

// Element `index` of the stream through transform `kind`, in double (exact for
// every kind but NORMAL, which the caller rounds to its type).
__device__ __forceinline__ double element(int kind, unsigned long long index, unsigned int k0,
                                          unsigned int k1, unsigned int s0, unsigned int s1) {
    const Words w = philox(index, k0, k1, s0, s1);
    switch (kind) {
        case UNIFORM64:
            return uniform_f64(w);
        case UNIFORM32:
            return (double)uniform_f32(w);
        case NORMAL:
            return normal(w);
        default:
            return rademacher(w);
    }
}

}  // namespace linalg_random

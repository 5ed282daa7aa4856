// Activation functions of fused_bias_act and their first and second derivatives, shared by the
// C++ (fused_bias_act.cc) and CUDA (fused_bias_act.cu) kernels. A is the activation id used in
// tf2/ops/fused_bias_act.py: 0 linear, 1 relu, 2 lrelu, 3 tanh, 4 sigmoid, 5 elu, 6 selu,
// 7 softplus, 8 swish. Ties at z == 0 follow TensorFlow's kernels (z > 0 is the positive side).
#ifndef STYLEGAN_FUSED_BIAS_ACT_MATH_H_
#define STYLEGAN_FUSED_BIAS_ACT_MATH_H_

#include <cmath>
#include <limits>

#ifdef __CUDACC__
#define FBA_HD __host__ __device__ __forceinline__
#else
#define FBA_HD inline
#endif

namespace stylegan_ops {

constexpr double kSeluScale = 1.0507009873554805;
constexpr double kSeluAlpha = 1.6732632423543772;

// Branch-free max/min that return the first argument when it is NaN (NaN propagates).
template <typename T>
FBA_HD T Max(T a, T b) { return a < b ? b : a; }

template <typename T>
FBA_HD T Min(T a, T b) { return a > b ? b : a; }

template <typename T>
FBA_HD T Sigmoid(T z) { return T(1) / (T(1) + exp(-z)); }

template <typename T>
FBA_HD T Softplus(T z) { return z > T(0) ? z + log1p(exp(-z)) : log1p(exp(z)); }

// f(z)
template <int A, typename T>
FBA_HD T ActF(T z, T alpha) {
  switch (A) {
    case 1: return Max(z, T(0));
    case 2: return Max(z, T(0)) + alpha * Min(z, T(0));  // branch-free leaky relu
    case 3: return tanh(z);
    case 4: return Sigmoid(z);
    case 5: return z > T(0) ? z : expm1(z);
    case 6: return z > T(0) ? T(kSeluScale) * z : T(kSeluScale * kSeluAlpha) * expm1(z);
    case 7: return Softplus(z);
    case 8: return z * Sigmoid(z);
    default: return z;
  }
}

// f'(z)
template <int A, typename T>
FBA_HD T ActD1(T z, T alpha) {
  switch (A) {
    case 1: return z > T(0) ? T(1) : T(0);
    case 2: return z > T(0) ? T(1) : alpha;
    case 3: { T y = tanh(z); return T(1) - y * y; }
    case 4: { T s = Sigmoid(z); return s * (T(1) - s); }
    case 5: return z > T(0) ? T(1) : exp(z);
    case 6: return z > T(0) ? T(kSeluScale) : T(kSeluScale * kSeluAlpha) * exp(z);
    case 7: return Sigmoid(z);
    case 8: { T s = Sigmoid(z); return s * (T(1) + z * (T(1) - s)); }
    default: return T(1);
  }
}

// f''(z)
template <int A, typename T>
FBA_HD T ActD2(T z, T alpha) {
  switch (A) {
    case 3: { T y = tanh(z); return T(-2) * y * (T(1) - y * y); }
    case 4: { T s = Sigmoid(z); return s * (T(1) - s) * (T(1) - T(2) * s); }
    case 5: return z > T(0) ? T(0) : exp(z);
    case 6: return z > T(0) ? T(0) : T(kSeluScale * kSeluAlpha) * exp(z);
    case 7: { T s = Sigmoid(z); return s * (T(1) - s); }
    case 8: { T s = Sigmoid(z); return s * (T(1) - s) * (T(2) + z * (T(1) - T(2) * s)); }
    default: return T(0);  // linear, relu, lrelu are piecewise linear
  }
}

// grad 0: clamp(gain * f(z)); grad 1: g * gain * f'(z); grad 2: g * gain * f''(z).
// Derivatives are zero where |gain * f(z)| > clamp. "No clamp" is passed as clamp = +inf, which
// keeps the element loop free of branches so the compiler can vectorize it.
template <int A, int G, typename T>
FBA_HD T FusedBiasActElement(T z, T g, T alpha, T gain, T clamp) {
  const T y = ActF<A>(z, alpha) * gain;
  if (G == 0) return Min(Max(y, -clamp), clamp);
  const T d = g * gain * (G == 1 ? ActD1<A>(z, alpha) : ActD2<A>(z, alpha));
  // The mask of tf.clip_by_value's gradient; '|' instead of '||' keeps the loop branch-free.
  const bool outside = (y < -clamp) | (y > clamp);
  return outside ? T(0) : d;
}

}  // namespace stylegan_ops

#endif  // STYLEGAN_FUSED_BIAS_ACT_MATH_H_

// upfirdn2d: upsample (zero insertion), pad/crop, FIR filter (true convolution), downsample.
// C++ CPU kernel for tf2/ops/upfirdn2d.py; built at first use against the installed TensorFlow.
//
// x [major, inH, inW, minor] -> y [major, outH, outW, minor], per axis
//   out = (in * up + pad0 + pad1 - kh) / down + 1.
// Output o sums x_up[o * down + t - pad0] * k[kh - 1 - t] over taps t, where x_up[j] is x[j / up]
// when j is a multiple of up inside the input and zero otherwise. The kernel visits only the
// taps that meet real samples (every up-th one) and only the kept outputs.
#define EIGEN_USE_THREADS
#include <algorithm>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace stylegan_ops {

using tensorflow::DEVICE_CPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::int64;
using tensorflow::shape_inference::DimensionHandle;
using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

struct Params {
  int upx, upy, downx, downy, padx0, padx1, pady0, pady1;
};

static int64 OutSize(int64 in, int up, int pad0, int pad1, int64 k, int down) {
  int64 span = in * up + pad0 + pad1 - k;
  return span < 0 ? 0 : span / down + 1;
}

// First tap index t >= 0 such that j0 + t is a non-negative multiple of up, and the end of the
// taps (exclusive) such that (j0 + t) / up < in.
static inline void TapRange(int64 j0, int up, int64 in, int64 k, int64* t0, int64* t1) {
  int64 t = std::max<int64>(0, -j0);
  int64 r = (j0 + t) % up;
  if (r) t += up - r;
  *t0 = t;
  *t1 = std::min<int64>(k, (in - 1) * up - j0 + 1);
}

template <typename T>
class Upfirdn2dOp : public OpKernel {
 public:
  explicit Upfirdn2dOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("upx", &p_.upx));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("upy", &p_.upy));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("downx", &p_.downx));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("downy", &p_.downy));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padx0", &p_.padx0));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padx1", &p_.padx1));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pady0", &p_.pady0));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pady1", &p_.pady1));
    OP_REQUIRES(ctx, p_.upx >= 1 && p_.upy >= 1 && p_.downx >= 1 && p_.downy >= 1,
                absl::InvalidArgumentError("upfirdn2d: up/down factors must be >= 1"));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& k = ctx->input(1);
    OP_REQUIRES(ctx, x.dims() == 4,
                absl::InvalidArgumentError("upfirdn2d: x must be [major, H, W, minor]"));
    OP_REQUIRES(ctx, k.dims() == 2 && k.NumElements() > 0,
                absl::InvalidArgumentError("upfirdn2d: k must be a non-empty 2-D filter"));
    const int64 major = x.dim_size(0), in_h = x.dim_size(1), in_w = x.dim_size(2);
    const int64 minor = x.dim_size(3), kh = k.dim_size(0), kw = k.dim_size(1);
    const int64 out_h = OutSize(in_h, p_.upy, p_.pady0, p_.pady1, kh, p_.downy);
    const int64 out_w = OutSize(in_w, p_.upx, p_.padx0, p_.padx1, kw, p_.downx);
    OP_REQUIRES(ctx, out_h >= 1 && out_w >= 1,
                absl::InvalidArgumentError("upfirdn2d: empty output for these pads"));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({major, out_h, out_w, minor}), &y));
    if (major == 0 || minor == 0 || in_h == 0 || in_w == 0) {
      y->flat<T>().setZero();
      return;
    }

    // Correlation weights: kf[t][s] = k[kh-1-t][kw-1-s].
    const T* kd = k.flat<T>().data();
    std::vector<T> kf(kh * kw);
    for (int64 t = 0; t < kh; ++t)
      for (int64 s = 0; s < kw; ++s) kf[t * kw + s] = kd[(kh - 1 - t) * kw + (kw - 1 - s)];

    // Per output column: first tap, first input column and number of taps that meet real
    // samples (taps advance by up, input columns by 1). Computed once so the hot loops below
    // have no divisions.
    std::vector<int64> col_s0(out_w), col_ix0(out_w), col_n(out_w);
    for (int64 ox = 0; ox < out_w; ++ox) {
      const int64 jx0 = ox * p_.downx - p_.padx0;
      int64 s0, s1;
      TapRange(jx0, p_.upx, in_w, kw, &s0, &s1);
      col_s0[ox] = s0;
      col_n[ox] = s1 > s0 ? (s1 - s0 + p_.upx - 1) / p_.upx : 0;
      col_ix0[ox] = col_n[ox] ? (jx0 + s0) / p_.upx : 0;
    }

    const T* xd = x.flat<T>().data();
    T* yd = y->flat<T>().data();
    const Params p = p_;
    auto rows = [&, p](int64 start, int64 end) {
      for (int64 row = start; row < end; ++row) {
        // [major, outH] row -> accumulate the contributing input rows one tap at a time.
        const int64 m = row / out_h, oy = row % out_h;
        const int64 jy0 = oy * p.downy - p.pady0;
        int64 t0, t1;
        TapRange(jy0, p.upy, in_h, kh, &t0, &t1);
        T* yrow = yd + row * out_w * minor;
        std::fill(yrow, yrow + out_w * minor, T(0));
        if (t1 <= t0) continue;
        const int64 iy0 = (jy0 + t0) / p.upy;
        for (int64 t = t0, iy = iy0; t < t1; t += p.upy, ++iy) {
          const T* xr = xd + (m * in_h + iy) * in_w * minor;
          const T* kr = kf.data() + t * kw;
          if (minor == 1) {
            for (int64 ox = 0; ox < out_w; ++ox) {
              const T* xp = xr + col_ix0[ox];
              const T* kp = kr + col_s0[ox];
              const int64 n = col_n[ox];
              T sum = T(0);
              for (int64 q = 0; q < n; ++q) sum += kp[q * p.upx] * xp[q];
              yrow[ox] += sum;
            }
          } else {
            for (int64 ox = 0; ox < out_w; ++ox) {
              T* out = yrow + ox * minor;
              const int64 n = col_n[ox];
              for (int64 q = 0; q < n; ++q) {
                const T w = kr[col_s0[ox] + q * p.upx];
                const T* xp = xr + (col_ix0[ox] + q) * minor;
                for (int64 c = 0; c < minor; ++c) out[c] += w * xp[c];
              }
            }
          }
        }
      }
    };
    const int64 taps = ((kh + p.upy - 1) / p.upy) * ((kw + p.upx - 1) / p.upx);
    auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    tensorflow::Shard(threads->num_threads, threads->workers, major * out_h,
                      std::max<int64>(1, out_w * minor * taps * 2), rows);
  }

 private:
  Params p_;
};

REGISTER_OP("StyleganUpfirdn2d")
    .Input("x: T")
    .Input("k: T")
    .Output("y: T")
    .Attr("T: {float, double}")
    .Attr("upx: int = 1")
    .Attr("upy: int = 1")
    .Attr("downx: int = 1")
    .Attr("downy: int = 1")
    .Attr("padx0: int = 0")
    .Attr("padx1: int = 0")
    .Attr("pady0: int = 0")
    .Attr("pady1: int = 0")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, k;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &k));
      Params p;
      TF_RETURN_IF_ERROR(c->GetAttr("upx", &p.upx));
      TF_RETURN_IF_ERROR(c->GetAttr("upy", &p.upy));
      TF_RETURN_IF_ERROR(c->GetAttr("downx", &p.downx));
      TF_RETURN_IF_ERROR(c->GetAttr("downy", &p.downy));
      TF_RETURN_IF_ERROR(c->GetAttr("padx0", &p.padx0));
      TF_RETURN_IF_ERROR(c->GetAttr("padx1", &p.padx1));
      TF_RETURN_IF_ERROR(c->GetAttr("pady0", &p.pady0));
      TF_RETURN_IF_ERROR(c->GetAttr("pady1", &p.pady1));
      DimensionHandle ih = c->Dim(x, 1), iw = c->Dim(x, 2), kh = c->Dim(k, 0), kw = c->Dim(k, 1);
      DimensionHandle oh = c->UnknownDim(), ow = c->UnknownDim();
      if (c->ValueKnown(ih) && c->ValueKnown(kh))
        oh = c->MakeDim(OutSize(c->Value(ih), p.upy, p.pady0, p.pady1, c->Value(kh), p.downy));
      if (c->ValueKnown(iw) && c->ValueKnown(kw))
        ow = c->MakeDim(OutSize(c->Value(iw), p.upx, p.padx0, p.padx1, c->Value(kw), p.downx));
      c->set_output(0, c->MakeShape({c->Dim(x, 0), oh, ow, c->Dim(x, 3)}));
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(
    Name("StyleganUpfirdn2d").Device(DEVICE_CPU).TypeConstraint<float>("T"),
    Upfirdn2dOp<float>);
REGISTER_KERNEL_BUILDER(
    Name("StyleganUpfirdn2d").Device(DEVICE_CPU).TypeConstraint<double>("T"),
    Upfirdn2dOp<double>);

}  // namespace stylegan_ops

// upfirdn2d CUDA kernel for tf2/ops/upfirdn2d.py (op StyleganUpfirdn2dGpu). Same semantics and
// attributes as the C++ kernel in upfirdn2d.cc: one thread per output element, visiting only the
// filter taps that meet real (non-inserted) input samples.
// Built with nvcc by tf2/ops/_build.py only when TensorFlow lists a GPU. It was compiled, but
// never run, on the machine this port was written on (no GPU there).
#define EIGEN_USE_GPU
#include <cuda_runtime.h>

#include <algorithm>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace stylegan_ops {

using tensorflow::DEVICE_GPU;
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
  int64 major, in_h, in_w, minor, kh, kw, out_h, out_w;
};

static int64 OutSize(int64 in, int up, int pad0, int pad1, int64 k, int down) {
  int64 span = in * up + pad0 + pad1 - k;
  return span < 0 ? 0 : span / down + 1;
}

__device__ __forceinline__ void TapRange(int64 j0, int up, int64 in, int64 k, int64* t0,
                                         int64* t1) {
  int64 t = j0 < 0 ? -j0 : 0;
  int64 r = (j0 + t) % up;
  if (r) t += up - r;
  *t0 = t;
  int64 end = (in - 1) * up - j0 + 1;
  *t1 = end < k ? end : k;
}

template <typename T>
__global__ void Upfirdn2dKernel(const T* x, const T* k, T* y, Params p) {
  const int64 total = p.major * p.out_h * p.out_w * p.minor;
  for (int64 i = blockIdx.x * (int64)blockDim.x + threadIdx.x; i < total;
       i += (int64)blockDim.x * gridDim.x) {
    const int64 c = i % p.minor;
    const int64 ox = (i / p.minor) % p.out_w;
    const int64 oy = (i / (p.minor * p.out_w)) % p.out_h;
    const int64 m = i / (p.minor * p.out_w * p.out_h);
    const int64 jy0 = oy * p.downy - p.pady0, jx0 = ox * p.downx - p.padx0;
    int64 t0, t1, s0, s1;
    TapRange(jy0, p.upy, p.in_h, p.kh, &t0, &t1);
    TapRange(jx0, p.upx, p.in_w, p.kw, &s0, &s1);
    T sum = T(0);
    for (int64 t = t0; t < t1; t += p.upy) {
      const int64 iy = (jy0 + t) / p.upy;
      for (int64 s = s0; s < s1; s += p.upx) {
        const int64 ix = (jx0 + s) / p.upx;
        // true convolution: tap t of the correlation uses k[kh-1-t][kw-1-s]
        sum += k[(p.kh - 1 - t) * p.kw + (p.kw - 1 - s)] *
               x[((m * p.in_h + iy) * p.in_w + ix) * p.minor + c];
      }
    }
    y[i] = sum;
  }
}

template <typename T>
class Upfirdn2dGpuOp : public OpKernel {
 public:
  explicit Upfirdn2dGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
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
    Params p = p_;
    p.major = x.dim_size(0); p.in_h = x.dim_size(1); p.in_w = x.dim_size(2);
    p.minor = x.dim_size(3); p.kh = k.dim_size(0); p.kw = k.dim_size(1);
    p.out_h = OutSize(p.in_h, p.upy, p.pady0, p.pady1, p.kh, p.downy);
    p.out_w = OutSize(p.in_w, p.upx, p.padx0, p.padx1, p.kw, p.downx);
    OP_REQUIRES(ctx, p.out_h >= 1 && p.out_w >= 1,
                absl::InvalidArgumentError("upfirdn2d: empty output for these pads"));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({p.major, p.out_h, p.out_w, p.minor}), &y));
    const int64 total = y->NumElements();
    if (total == 0) return;
    OP_REQUIRES(ctx, p.in_h > 0 && p.in_w > 0,
                absl::InvalidArgumentError("upfirdn2d: empty input with non-empty output"));
    cudaStream_t stream = ctx->eigen_device<Eigen::GpuDevice>().stream();
    const int threads = 256;
    const int blocks = (int)std::min<int64>((total + threads - 1) / threads, 65535);
    Upfirdn2dKernel<T><<<blocks, threads, 0, stream>>>(
        x.flat<T>().data(), k.flat<T>().data(), y->flat<T>().data(), p);
    cudaError_t err = cudaGetLastError();
    OP_REQUIRES(ctx, err == cudaSuccess,
                absl::InternalError(std::string("upfirdn2d CUDA launch: ") +
                                    cudaGetErrorString(err)));
  }

 private:
  Params p_;
};

REGISTER_OP("StyleganUpfirdn2dGpu")
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
      int upx, upy, downx, downy, padx0, padx1, pady0, pady1;
      TF_RETURN_IF_ERROR(c->GetAttr("upx", &upx));
      TF_RETURN_IF_ERROR(c->GetAttr("upy", &upy));
      TF_RETURN_IF_ERROR(c->GetAttr("downx", &downx));
      TF_RETURN_IF_ERROR(c->GetAttr("downy", &downy));
      TF_RETURN_IF_ERROR(c->GetAttr("padx0", &padx0));
      TF_RETURN_IF_ERROR(c->GetAttr("padx1", &padx1));
      TF_RETURN_IF_ERROR(c->GetAttr("pady0", &pady0));
      TF_RETURN_IF_ERROR(c->GetAttr("pady1", &pady1));
      DimensionHandle ih = c->Dim(x, 1), iw = c->Dim(x, 2), kh = c->Dim(k, 0), kw = c->Dim(k, 1);
      DimensionHandle oh = c->UnknownDim(), ow = c->UnknownDim();
      if (c->ValueKnown(ih) && c->ValueKnown(kh))
        oh = c->MakeDim(OutSize(c->Value(ih), upy, pady0, pady1, c->Value(kh), downy));
      if (c->ValueKnown(iw) && c->ValueKnown(kw))
        ow = c->MakeDim(OutSize(c->Value(iw), upx, padx0, padx1, c->Value(kw), downx));
      c->set_output(0, c->MakeShape({c->Dim(x, 0), oh, ow, c->Dim(x, 3)}));
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(
    Name("StyleganUpfirdn2dGpu").Device(DEVICE_GPU).TypeConstraint<float>("T"),
    Upfirdn2dGpuOp<float>);
REGISTER_KERNEL_BUILDER(
    Name("StyleganUpfirdn2dGpu").Device(DEVICE_GPU).TypeConstraint<double>("T"),
    Upfirdn2dGpuOp<double>);

}  // namespace stylegan_ops

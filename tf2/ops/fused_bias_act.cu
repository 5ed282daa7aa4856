// fused_bias_act CUDA kernel for tf2/ops/fused_bias_act.py (op StyleganFusedBiasActGpu). Same
// inputs, attributes and math (fused_bias_act_math.h) as the C++ kernel in fused_bias_act.cc:
// grad=0 gives y = clamp(act(x + b) * gain), grad=1 and 2 give g times the first and second
// derivative. params = [alpha, gain, clamp (< 0: none)] lives in host memory.
// Built with nvcc by tf2/ops/_build.py only when TensorFlow lists a GPU. It was compiled, but
// never run, on the machine this port was written on (no GPU there).
#define EIGEN_USE_GPU
#include <cuda_runtime.h>

#include <algorithm>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "fused_bias_act_math.h"

namespace stylegan_ops {

using tensorflow::DEVICE_GPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::int64;

template <typename T, int A, int G>
__global__ void FusedBiasActKernel(const T* x, const T* b, const T* g, T* y, int64 n,
                                   int64 channels, int64 inner, T alpha, T gain, T clamp) {
  for (int64 i = blockIdx.x * (int64)blockDim.x + threadIdx.x; i < n;
       i += (int64)blockDim.x * gridDim.x) {
    const T z = b ? x[i] + b[(i / inner) % channels] : x[i];
    y[i] = FusedBiasActElement<A, G, T>(z, g ? g[i] : T(0), alpha, gain, clamp);
  }
}

template <typename T, int A>
void Launch(int grad, cudaStream_t stream, const T* x, const T* b, const T* g, T* y, int64 n,
            int64 c, int64 inner, T alpha, T gain, T clamp) {
  const int threads = 256;
  const int blocks = (int)std::min<int64>((n + threads - 1) / threads, 65535);
  if (grad == 0)
    FusedBiasActKernel<T, A, 0><<<blocks, threads, 0, stream>>>(x, b, g, y, n, c, inner, alpha, gain, clamp);
  else if (grad == 1)
    FusedBiasActKernel<T, A, 1><<<blocks, threads, 0, stream>>>(x, b, g, y, n, c, inner, alpha, gain, clamp);
  else
    FusedBiasActKernel<T, A, 2><<<blocks, threads, 0, stream>>>(x, b, g, y, n, c, inner, alpha, gain, clamp);
}

template <typename T>
class FusedBiasActGpuOp : public OpKernel {
 public:
  explicit FusedBiasActGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("act", &act_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("grad", &grad_));
    OP_REQUIRES(ctx, act_ >= 0 && act_ <= 8,
                absl::InvalidArgumentError("fused_bias_act: unknown act id"));
    OP_REQUIRES(ctx, grad_ >= 0 && grad_ <= 2,
                absl::InvalidArgumentError("fused_bias_act: grad must be 0, 1 or 2"));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& b = ctx->input(1);
    const Tensor& g = ctx->input(2);
    const Tensor& params = ctx->input(3);
    OP_REQUIRES(ctx, params.dims() == 1 && params.NumElements() == 3,
                absl::InvalidArgumentError("fused_bias_act: params must be [alpha, gain, clamp]"));
    const int64 n = x.NumElements();
    int64 channels = 1, inner = 1;
    if (b.NumElements() > 0) {
      OP_REQUIRES(ctx, axis_ >= 0 && axis_ < x.dims(),
                  absl::InvalidArgumentError("fused_bias_act: axis out of range"));
      channels = x.dim_size(axis_);
      for (int d = axis_ + 1; d < x.dims(); ++d) inner *= x.dim_size(d);
      OP_REQUIRES(ctx, b.dims() == 1 && b.NumElements() == channels,
                  absl::InvalidArgumentError("fused_bias_act: bias must be [x.shape[axis]]"));
    }
    OP_REQUIRES(ctx, grad_ == 0 || g.shape() == x.shape(),
                absl::InvalidArgumentError("fused_bias_act: g must have x's shape"));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    if (n == 0) return;
    const double* pd = params.flat<double>().data();  // host memory
    const T alpha = T(pd[0]), gain = T(pd[1]);
    const T clamp = pd[2] >= 0 ? T(pd[2]) : std::numeric_limits<T>::infinity();
    const T* xd = x.flat<T>().data();
    const T* bd = b.NumElements() > 0 ? b.flat<T>().data() : nullptr;
    const T* gd = grad_ > 0 ? g.flat<T>().data() : nullptr;
    T* yd = y->flat<T>().data();
    cudaStream_t stream = ctx->eigen_device<Eigen::GpuDevice>().stream();
#define FBA_CASE(A) \
  case A: Launch<T, A>(grad_, stream, xd, bd, gd, yd, n, channels, inner, alpha, gain, clamp); break;
    switch (act_) {
      FBA_CASE(0) FBA_CASE(1) FBA_CASE(2) FBA_CASE(3) FBA_CASE(4)
      FBA_CASE(5) FBA_CASE(6) FBA_CASE(7) FBA_CASE(8)
    }
#undef FBA_CASE
    cudaError_t err = cudaGetLastError();
    OP_REQUIRES(ctx, err == cudaSuccess,
                absl::InternalError(std::string("fused_bias_act CUDA launch: ") +
                                    cudaGetErrorString(err)));
  }

 private:
  int act_, axis_, grad_;
};

REGISTER_OP("StyleganFusedBiasActGpu")
    .Input("x: T")
    .Input("b: T")
    .Input("g: T")
    .Input("params: double")
    .Output("y: T")
    .Attr("T: {float, double}")
    .Attr("act: int = 0")
    .Attr("axis: int = 1")
    .Attr("grad: int = 0")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("StyleganFusedBiasActGpu")
                            .Device(DEVICE_GPU)
                            .HostMemory("params")
                            .TypeConstraint<float>("T"),
                        FusedBiasActGpuOp<float>);
REGISTER_KERNEL_BUILDER(Name("StyleganFusedBiasActGpu")
                            .Device(DEVICE_GPU)
                            .HostMemory("params")
                            .TypeConstraint<double>("T"),
                        FusedBiasActGpuOp<double>);

}  // namespace stylegan_ops

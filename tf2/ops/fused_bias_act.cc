// fused_bias_act: y = clamp(act(x + b) * gain); also its first (grad=1) and second (grad=2)
// derivatives times an incoming gradient g; params = [alpha, gain, clamp (< 0: none)]. C++ CPU kernel for tf2/ops/fused_bias_act.py, built
// at first use against the installed TensorFlow. The math is in fused_bias_act_math.h.
#define EIGEN_USE_THREADS
#include <algorithm>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#include "fused_bias_act_math.h"

namespace stylegan_ops {

using tensorflow::DEVICE_CPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::int64;

// x is viewed as [outer, channels, inner]; the bias runs along channels.
template <typename T, int A, int G>
void RunElements(OpKernelContext* ctx, const T* x, const T* b, const T* g, T* y, int64 n,
                 int64 channels, int64 inner, T alpha, T gain, T clamp) {
  auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
  const int64 cost = (A >= 3) ? 40 : 3;  // transcendental activations cost more per element
  auto run = [=](const T* xs, const T* gs, T* ys, int64 count, T bias) {
    for (int64 i = 0; i < count; ++i)
      ys[i] = FusedBiasActElement<A, G, T>(xs[i] + bias, G ? gs[i] : T(0), alpha, gain, clamp);
  };
  if (!b) {  // no bias: one flat range
    tensorflow::Shard(threads->num_threads, threads->workers, n, cost,
                      [=](int64 start, int64 end) {
                        run(x + start, g ? g + start : nullptr, y + start, end - start, T(0));
                      });
  } else if (inner == 1) {  // channels last: rows of `channels` elements, bias varies inside
    tensorflow::Shard(threads->num_threads, threads->workers, n / channels, cost * channels,
                      [=](int64 start, int64 end) {
                        for (int64 r = start; r < end; ++r) {
                          const int64 o = r * channels;
                          for (int64 c = 0; c < channels; ++c)
                            y[o + c] = FusedBiasActElement<A, G, T>(
                                x[o + c] + b[c], G ? g[o + c] : T(0), alpha, gain, clamp);
                        }
                      });
  } else {  // rows of `inner` elements sharing one bias value
    tensorflow::Shard(threads->num_threads, threads->workers, n / inner, cost * inner,
                      [=](int64 start, int64 end) {
                        for (int64 r = start; r < end; ++r) {
                          const int64 o = r * inner;
                          run(x + o, g ? g + o : nullptr, y + o, inner, b[r % channels]);
                        }
                      });
  }
}

template <typename T, int A>
void DispatchGrad(int grad, OpKernelContext* ctx, const T* x, const T* b, const T* g, T* y,
                  int64 n, int64 c, int64 inner, T alpha, T gain, T clamp) {
  if (grad == 0) RunElements<T, A, 0>(ctx, x, b, g, y, n, c, inner, alpha, gain, clamp);
  else if (grad == 1) RunElements<T, A, 1>(ctx, x, b, g, y, n, c, inner, alpha, gain, clamp);
  else RunElements<T, A, 2>(ctx, x, b, g, y, n, c, inner, alpha, gain, clamp);
}

template <typename T>
class FusedBiasActOp : public OpKernel {
 public:
  explicit FusedBiasActOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
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
    const T* xd = x.flat<T>().data();
    const T* bd = b.NumElements() > 0 ? b.flat<T>().data() : nullptr;
    const T* gd = grad_ > 0 ? g.flat<T>().data() : nullptr;
    T* yd = y->flat<T>().data();
    // alpha, gain and clamp come as a float64 tensor: float attrs would round them to 32 bits.
    const double* pd = params.flat<double>().data();
    const T alpha = T(pd[0]), gain = T(pd[1]);
    const T clamp = pd[2] >= 0 ? T(pd[2]) : std::numeric_limits<T>::infinity();
#define FBA_CASE(A) \
  case A: DispatchGrad<T, A>(grad_, ctx, xd, bd, gd, yd, n, channels, inner, alpha, gain, clamp); break;
    switch (act_) {
      FBA_CASE(0) FBA_CASE(1) FBA_CASE(2) FBA_CASE(3) FBA_CASE(4)
      FBA_CASE(5) FBA_CASE(6) FBA_CASE(7) FBA_CASE(8)
    }
#undef FBA_CASE
  }

 private:
  int act_, axis_, grad_;
};

REGISTER_OP("StyleganFusedBiasAct")
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

REGISTER_KERNEL_BUILDER(
    Name("StyleganFusedBiasAct").Device(DEVICE_CPU).TypeConstraint<float>("T"),
    FusedBiasActOp<float>);
REGISTER_KERNEL_BUILDER(
    Name("StyleganFusedBiasAct").Device(DEVICE_CPU).TypeConstraint<double>("T"),
    FusedBiasActOp<double>);

}  // namespace stylegan_ops

// GAIC RoIAlign on CUDA: one thread per output element; the backward scatters the true gradient with
// atomic adds (each ROI samples its own points, so there is no shared grid to exploit). The order of
// those adds varies from run to run, so the backward alerts under torch.use_deterministic_algorithms.
#include <ATen/Context.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>
#include <ATen/native/cuda/KernelUtils.cuh>

#include <limits>

#include "../align_checks.h"
#include "../align_common.h"
#include "align_cuda.h"

namespace s2c {
namespace cuda {
namespace {

constexpr const char* kForward = "s2c::gaic_roi_align";
constexpr const char* kBackward = "s2c::_gaic_roi_align_backward";

template <typename acc_t>
struct RoiPoint {
  int64_t batch;
  AxisSample<acc_t> y, x;
};

template <typename scalar_t, typename acc_t>
__device__ inline RoiPoint<acc_t> roi_point(const scalar_t* roi, acc_t scale, int64_t i, int64_t j, int64_t H,
                                            int64_t W, int64_t ph, int64_t pw) {
  const ScaledRoi<acc_t> r = scale_roi<scalar_t, acc_t>(roi, scale);
  RoiPoint<acc_t> p;
  p.batch = r.batch;
  p.y = axis_sample<acc_t>(roi_position<acc_t>(i, r.y1, roi_step<acc_t>(r.y1, r.y2, ph)), H);
  p.x = axis_sample<acc_t>(roi_position<acc_t>(j, r.x1, roi_step<acc_t>(r.x1, r.x2, pw)), W);
  return p;
}

template <typename scalar_t, typename acc_t>
__global__ void roi_forward_kernel(const scalar_t* __restrict__ input, const scalar_t* __restrict__ rois,
                                   acc_t scale, int64_t K, int64_t N, int64_t C, int64_t H, int64_t W,
                                   int64_t ph, int64_t pw, scalar_t* __restrict__ out) {
  S2C_GRID_STRIDE(idx, K * C * ph * pw) {
    const int64_t j = idx % pw, i = (idx / pw) % ph, c = (idx / (ph * pw)) % C, k = idx / (C * ph * pw);
    const RoiPoint<acc_t> p = roi_point<scalar_t, acc_t>(rois + k * 5, scale, i, j, H, W, ph, pw);
    acc_t v = 0;
    if (p.batch < 0 || p.batch >= N) {
      v = std::numeric_limits<acc_t>::quiet_NaN();
    } else if (p.y.valid && p.x.valid) {
      const scalar_t* top = input + ((p.batch * C + c) * H + p.y.lo) * W + p.x.lo;
      const scalar_t* bottom = top + W;
      v = bilinear<acc_t>(static_cast<acc_t>(top[0]), static_cast<acc_t>(top[1]),
                          static_cast<acc_t>(bottom[0]), static_cast<acc_t>(bottom[1]), p.y.frac, p.x.frac);
    }
    out[idx] = static_cast<scalar_t>(v);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void roi_backward_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ rois,
                                    acc_t scale, int64_t K, int64_t N, int64_t C, int64_t H, int64_t W,
                                    int64_t ph, int64_t pw, scalar_t* __restrict__ grad_input,
                                    int64_t grad_input_numel) {
  S2C_GRID_STRIDE(idx, K * C * ph * pw) {
    const int64_t j = idx % pw, i = (idx / pw) % ph, c = (idx / (ph * pw)) % C, k = idx / (C * ph * pw);
    const RoiPoint<acc_t> p = roi_point<scalar_t, acc_t>(rois + k * 5, scale, i, j, H, W, ph, pw);
    if (p.batch < 0 || p.batch >= N || !p.y.valid || !p.x.valid) {
      continue;
    }
    const acc_t g = static_cast<acc_t>(grad[idx]);
    const int64_t top = ((p.batch * C + c) * H + p.y.lo) * W + p.x.lo;
    const acc_t gy0 = g * (acc_t(1) - p.y.frac), gy1 = g * p.y.frac;
    at::native::fastAtomicAdd(grad_input, top, grad_input_numel,
                              static_cast<scalar_t>(gy0 * (acc_t(1) - p.x.frac)), true);
    at::native::fastAtomicAdd(grad_input, top + 1, grad_input_numel, static_cast<scalar_t>(gy0 * p.x.frac),
                              true);
    at::native::fastAtomicAdd(grad_input, top + W, grad_input_numel,
                              static_cast<scalar_t>(gy1 * (acc_t(1) - p.x.frac)), true);
    at::native::fastAtomicAdd(grad_input, top + W + 1, grad_input_numel,
                              static_cast<scalar_t>(gy1 * p.x.frac), true);
  }
}

at::Tensor gaic_roi_align_forward(const at::Tensor& input_, const at::Tensor& rois_, double spatial_scale,
                                  int64_t ph, int64_t pw) {
  check_forward_cuda(kForward, input_, rois_, spatial_scale, ph, pw);
  c10::cuda::CUDAGuard guard(input_.device());
  const int64_t N = input_.size(0), C = input_.size(1), H = input_.size(2), W = input_.size(3);
  const int64_t K = rois_.size(0);
  RoiValueCheck check(kForward, rois_, N);
  at::Tensor out = at::empty({K, C, ph, pw}, input_.options());
  if (out.numel() == 0) {
    check.wait();
    return out;
  }
  const at::Tensor input = input_.contiguous();
  const at::Tensor rois = rois_.contiguous();
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), kForward, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    roi_forward_kernel<scalar_t, acc_t><<<blocks_for(out.numel()), kThreads, 0, stream>>>(
        input.const_data_ptr<scalar_t>(), rois.const_data_ptr<scalar_t>(), static_cast<acc_t>(spatial_scale),
        K, N, C, H, W, ph, pw, out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  // Awaited after the launch: the kernel is memory-safe on any ROI values.
  check.wait();
  return out;
}

at::Tensor gaic_roi_align_backward(const at::Tensor& grad_, const at::Tensor& rois_, double spatial_scale,
                                   int64_t ph, int64_t pw, int64_t N, int64_t C, int64_t H, int64_t W) {
  check_backward_cuda(kBackward, grad_, rois_, spatial_scale, ph, pw, N, C, H, W);
  at::globalContext().alertNotDeterministic("s2c::_gaic_roi_align_backward (CUDA)");
  c10::cuda::CUDAGuard guard(grad_.device());
  RoiValueCheck check(kBackward, rois_, N);
  const int64_t K = rois_.size(0);
  at::Tensor grad_input = at::zeros({N, C, H, W}, grad_.options());
  if (grad_.numel() == 0) {
    check.wait();
    return grad_input;
  }
  const at::Tensor grad = grad_.contiguous();
  const at::Tensor rois = rois_.contiguous();
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), kBackward, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    roi_backward_kernel<scalar_t, acc_t><<<blocks_for(grad.numel()), kThreads, 0, stream>>>(
        grad.const_data_ptr<scalar_t>(), rois.const_data_ptr<scalar_t>(), static_cast<acc_t>(spatial_scale),
        K, N, C, H, W, ph, pw, grad_input.mutable_data_ptr<scalar_t>(), grad_input.numel());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  check.wait();
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(s2c, CUDA, m) {
  m.impl("gaic_roi_align", &gaic_roi_align_forward);
  m.impl("_gaic_roi_align_backward", &gaic_roi_align_backward);
}

}  // namespace cuda
}  // namespace s2c

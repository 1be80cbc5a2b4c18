// RoDAlign on CUDA. Forward: each image's feature map is sampled once on the shared grid, then every
// ROI streams a copy of those samples with its discarded block zeroed. Backward: each image's masked
// gradients are summed per grid point (ROIs grouped by a stable sort of their batch index), then the
// sum is gathered back onto the feature map: no atomics, deterministic.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>
#include <ATen/cuda/detail/IntegerDivider.cuh>

#include <limits>
#include <type_traits>

#include "../align_checks.h"
#include "../align_common.h"
#include "align_cuda.h"

namespace s2c {
namespace cuda {
namespace {

using at::cuda::detail::IntDivider;

constexpr const char* kForward = "s2c::rod_align";
constexpr const char* kBackward = "s2c::_rod_align_backward";

template <typename scalar_t, typename acc_t>
__global__ void rod_sample_kernel(const scalar_t* __restrict__ input, int64_t planes, int64_t H, int64_t W,
                                  int64_t ph, int64_t pw, scalar_t* __restrict__ sampled) {
  const acc_t step_y = rod_step<acc_t>(H, ph), step_x = rod_step<acc_t>(W, pw);
  S2C_GRID_STRIDE(idx, planes * ph * pw) {
    const int64_t j = idx % pw, i = (idx / pw) % ph, p = idx / (ph * pw);
    const AxisSample<acc_t> y = axis_sample<acc_t>(rod_position<acc_t>(i, step_y), H);
    const AxisSample<acc_t> x = axis_sample<acc_t>(rod_position<acc_t>(j, step_x), W);
    const scalar_t* top = input + (p * H + y.lo) * W + x.lo;
    const scalar_t* bottom = top + W;
    sampled[idx] = static_cast<scalar_t>(
        bilinear<acc_t>(static_cast<acc_t>(top[0]), static_cast<acc_t>(top[1]), static_cast<acc_t>(bottom[0]),
                        static_cast<acc_t>(bottom[1]), y.frac, x.frac));
  }
}

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// Flat over the output, VEC elements per thread: ROI k's block is its image's samples with the
// discarded points zeroed. Each ROI's block is a whole number of packs. Index arithmetic uses
// precomputed divisors (multiply and shift for 32-bit indices): with plain divisions it cost as much
// as the stores.
template <typename scalar_t, typename acc_t, int VEC, typename index_t>
__global__ void rod_mask_kernel(const scalar_t* __restrict__ sampled, const scalar_t* __restrict__ rois,
                                acc_t scale, index_t total, IntDivider<index_t> packs_per_roi,
                                IntDivider<unsigned int> plane, IntDivider<unsigned int> width, int64_t N,
                                int H, int W, int ph, int pw, scalar_t* __restrict__ out) {
  const acc_t step_y = rod_step<acc_t>(H, ph), step_x = rod_step<acc_t>(W, pw);
  const Pack<scalar_t, VEC>* src = reinterpret_cast<const Pack<scalar_t, VEC>*>(sampled);
  Pack<scalar_t, VEC>* dst = reinterpret_cast<Pack<scalar_t, VEC>*>(out);
  for (index_t v = blockIdx.x * index_t(blockDim.x) + threadIdx.x; v < total;
       v += index_t(gridDim.x) * blockDim.x) {
    const auto roi = packs_per_roi.divmod(v);  // roi.div: the ROI, roi.mod: the pack within it
    const ScaledRoi<acc_t> r = scale_roi<scalar_t, acc_t>(rois + int64_t(roi.div) * 5, scale);
    Pack<scalar_t, VEC> pack;
    if (r.batch < 0 || r.batch >= N) {
#pragma unroll
      for (int e = 0; e < VEC; ++e) {
        pack.v[e] = static_cast<scalar_t>(std::numeric_limits<acc_t>::quiet_NaN());
      }
    } else {
      pack = src[r.batch * int64_t(packs_per_roi.divisor) + roi.mod];
      const auto first = width.divmod(plane.mod(static_cast<unsigned int>(roi.mod) * VEC));
      int i = first.div, j = first.mod;
#pragma unroll
      for (int e = 0; e < VEC; ++e) {
        if (in_span(rod_position<acc_t>(i, step_y), r.y1, r.y2) &&
            in_span(rod_position<acc_t>(j, step_x), r.x1, r.x2)) {
          pack.v[e] = scalar_t(0);
        }
        if (++j == pw) {
          j = 0;
          i = i + 1 == ph ? 0 : i + 1;
        }
      }
    }
    dst[v] = pack;
  }
}

// kept[n, c, i, j] = sum of grad[k, c, i, j] over the ROIs k of image n that keep point (i, j).
// ROIs are visited in batch-index order: batch[r * batch_stride] is non-decreasing, and ROI r is
// order[r] (or r itself when `order` is null), so image n's ROIs form one range, found by binary search.
template <typename scalar_t, typename acc_t>
__global__ void rod_kept_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ rois,
                                const scalar_t* __restrict__ batch, int64_t batch_stride,
                                const int64_t* __restrict__ order, acc_t scale, int64_t K, int64_t N,
                                int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw,
                                acc_t* __restrict__ kept) {
  const acc_t step_y = rod_step<acc_t>(H, ph), step_x = rod_step<acc_t>(W, pw);
  const int64_t plane = ph * pw;
  // First r in [lo, K) whose batch index is not below `value`.
  auto lower_bound = [&](int64_t lo, acc_t value) {
    int64_t hi = K;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (static_cast<acc_t>(batch[mid * batch_stride]) < value) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  };
  S2C_GRID_STRIDE(idx, N * C * plane) {
    const int64_t pix = idx % plane, c = (idx / plane) % C, n = idx / (C * plane);
    const acc_t y = rod_position<acc_t>(pix / pw, step_y), x = rod_position<acc_t>(pix % pw, step_x);
    const int64_t begin = lower_bound(0, static_cast<acc_t>(n));
    const int64_t end = lower_bound(begin, static_cast<acc_t>(n + 1));
    acc_t sum = 0;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t k = order ? order[r] : r;
      const ScaledRoi<acc_t> roi = scale_roi<scalar_t, acc_t>(rois + k * 5, scale);
      if (!(in_span(y, roi.y1, roi.y2) && in_span(x, roi.x1, roi.x2))) {
        sum += static_cast<acc_t>(grad[(k * C + c) * plane + pix]);
      }
    }
    kept[idx] = sum;
  }
}

// grad_input[n, c, h, w] = sum of kept[n, c, i, j] times the bilinear weight of (h, w) in sample
// (i, j): the adjoint of rod_sample_kernel, written as a gather.
template <typename scalar_t, typename acc_t>
__global__ void rod_gather_grad_kernel(const acc_t* __restrict__ kept, int64_t planes, int64_t H, int64_t W,
                                       int64_t ph, int64_t pw, scalar_t* __restrict__ grad_input) {
  const acc_t step_y = rod_step<acc_t>(H, ph), step_x = rod_step<acc_t>(W, pw);
  S2C_GRID_STRIDE(idx, planes * H * W) {
    const int64_t w = idx % W, h = (idx / W) % H, p = idx / (H * W);
    const acc_t* src = kept + p * ph * pw;
    acc_t sum = 0;
    for (int64_t i = 0; i < ph; ++i) {
      const AxisSample<acc_t> y = axis_sample<acc_t>(rod_position<acc_t>(i, step_y), H);
      if (y.lo != h && y.lo + 1 != h) {
        continue;
      }
      const acc_t wy = y.lo == h ? acc_t(1) - y.frac : y.frac;
      for (int64_t j = 0; j < pw; ++j) {
        const AxisSample<acc_t> x = axis_sample<acc_t>(rod_position<acc_t>(j, step_x), W);
        if (x.lo == w) {
          sum += src[i * pw + j] * wy * (acc_t(1) - x.frac);
        } else if (x.lo + 1 == w) {
          sum += src[i * pw + j] * wy * x.frac;
        }
      }
    }
    grad_input[idx] = static_cast<scalar_t>(sum);
  }
}

at::Tensor rod_align_forward(const at::Tensor& input_, const at::Tensor& rois_, double spatial_scale,
                             int64_t ph, int64_t pw) {
  check_forward_cuda(kForward, input_, rois_, spatial_scale, ph, pw);
  c10::cuda::CUDAGuard guard(input_.device());
  const int64_t N = input_.size(0), C = input_.size(1), H = input_.size(2), W = input_.size(3);
  TORCH_CHECK_VALUE(
      C * ph * pw < (int64_t(1) << 31) && H * W < (int64_t(1) << 31),
      s2c::msg(kForward, ": a feature plane or one ROI's output is too large (over 2^31 elements)"));
  const int64_t K = rois_.size(0);
  RoiValueCheck check(kForward, rois_, N);
  at::Tensor out = at::empty({K, C, ph, pw}, input_.options());
  if (K == 0 || C == 0) {
    check.wait();
    return out;
  }
  const at::Tensor input = input_.contiguous();
  const at::Tensor rois = rois_.contiguous();
  at::Tensor sampled = at::empty({N, C, ph, pw}, input.options());
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), kForward, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    if (N > 0) {  // with no images every ROI's batch index is invalid (the check raises below)
      rod_sample_kernel<scalar_t, acc_t><<<blocks_for(sampled.numel()), kThreads, 0, stream>>>(
          input.const_data_ptr<scalar_t>(), N * C, H, W, ph, pw, sampled.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    const int per_roi = static_cast<int>(C * ph * pw);
    // A few resident blocks per SM, each thread looping over several packs.
    const int64_t max_blocks = int64_t(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * 8;
    auto launch = [&](auto vec, auto index) {
      constexpr int VEC = decltype(vec)::value;
      using index_t = decltype(index);
      const int64_t total = K * (per_roi / VEC);
      rod_mask_kernel<scalar_t, acc_t, VEC, index_t>
          <<<std::min(blocks_for(total), max_blocks), kThreads, 0, stream>>>(
              sampled.const_data_ptr<scalar_t>(), rois.const_data_ptr<scalar_t>(),
              static_cast<acc_t>(spatial_scale), static_cast<index_t>(total),
              IntDivider<index_t>(per_roi / VEC), IntDivider<unsigned int>(ph * pw),
              IntDivider<unsigned int>(pw), N, H, W, ph, pw, out.mutable_data_ptr<scalar_t>());
    };
    auto launch_vec = [&](auto vec) {
      // 32-bit indices while the grid-stride loop cannot overflow them.
      if (K * per_roi < (int64_t(1) << 31)) {
        launch(vec, 0u);
      } else {
        launch(vec, uint64_t(0));
      }
    };
    // 16-byte stores when every ROI's block starts 16-byte aligned.
    if (per_roi % 4 == 0 && sizeof(scalar_t) == 4) {
      launch_vec(std::integral_constant<int, 4>());
    } else if (per_roi % 8 == 0 && sizeof(scalar_t) == 2) {
      launch_vec(std::integral_constant<int, 8>());
    } else {
      launch_vec(std::integral_constant<int, 1>());
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  check.wait();
  return out;
}

at::Tensor rod_align_backward(const at::Tensor& grad_, const at::Tensor& rois_, double spatial_scale,
                              int64_t ph, int64_t pw, int64_t N, int64_t C, int64_t H, int64_t W) {
  check_backward_cuda(kBackward, grad_, rois_, spatial_scale, ph, pw, N, C, H, W);
  c10::cuda::CUDAGuard guard(grad_.device());
  // The ROIs' order decides the launches, so the check is awaited first.
  const bool grouped = RoiValueCheck(kBackward, rois_, N).wait();
  const int64_t K = rois_.size(0);
  if (K == 0 || C == 0 || N == 0) {
    return at::zeros({N, C, H, W}, grad_.options());
  }
  at::Tensor grad_input = at::empty({N, C, H, W}, grad_.options());
  const at::Tensor grad = grad_.contiguous();
  const at::Tensor rois = rois_.contiguous();
  // ROIs already in batch order (the usual case) need no sort.
  at::Tensor sorted_batch, order;
  if (!grouped) {
    std::tie(sorted_batch, order) =
        at::sort(rois.select(1, 0).contiguous(), /*stable=*/true, /*dim=*/0, /*descending=*/false);
  }
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), kBackward, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::Tensor kept = at::empty({N, C, ph, pw}, grad.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    rod_kept_kernel<scalar_t, acc_t><<<blocks_for(kept.numel()), kThreads, 0, stream>>>(
        grad.const_data_ptr<scalar_t>(), rois.const_data_ptr<scalar_t>(),
        grouped ? rois.const_data_ptr<scalar_t>() : sorted_batch.const_data_ptr<scalar_t>(), grouped ? 5 : 1,
        grouped ? nullptr : order.const_data_ptr<int64_t>(), static_cast<acc_t>(spatial_scale), K, N, C, H, W,
        ph, pw, kept.mutable_data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    rod_gather_grad_kernel<scalar_t, acc_t><<<blocks_for(grad_input.numel()), kThreads, 0, stream>>>(
        kept.const_data_ptr<acc_t>(), N * C, H, W, ph, pw, grad_input.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(s2c, CUDA, m) {
  m.impl("rod_align", &rod_align_forward);
  m.impl("_rod_align_backward", &rod_align_backward);
}

}  // namespace cuda
}  // namespace s2c

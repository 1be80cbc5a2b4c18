// Building blocks of the CPU kernels: ROI grouping by image, and bilinear gather/scatter over a
// separable grid of sample points.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <cstdint>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "../align_checks.h"
#include "../align_common.h"

namespace s2c {
namespace cpu {

// Large outputs are written once, right after allocation, and most of that time goes to first-touch
// page faults (one per 4 KiB page). Asking for transparent huge pages on the output, as PyTorch does
// under THP_MEM_ALLOC_ENABLE, makes that one fault per 2 MiB. A hint only: errors are ignored.
inline void advise_huge_pages(void* data, int64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  if (bytes < int64_t(4 * kHuge)) {
    return;
  }
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (end > begin) {
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#endif
}

// The prologue shared by the CPU forward kernels: validation, the output, contiguous inputs.
// `input` and `rois` stay undefined when the output is empty (nothing to compute).
struct ForwardCall {
  at::Tensor input, rois, out;
};

inline ForwardCall begin_forward(const char* op, const at::Tensor& input, const at::Tensor& rois,
                                 double spatial_scale, int64_t ph, int64_t pw) {
  check_align_forward(op, input, rois, spatial_scale, ph, pw);
  TORCH_CHECK(input.is_cpu(), s2c::msg(op, ": the CPU kernel was given a ", input.device().str(), " tensor"));
  check_roi_values_cpu(op, rois, input.size(0));
  ForwardCall call;
  call.out = at::empty({rois.size(0), input.size(1), ph, pw}, input.options());
  if (call.out.numel() > 0) {
    advise_huge_pages(call.out.data_ptr(), call.out.nbytes());
    call.input = input.contiguous();
    call.rois = rois.contiguous();
  }
  return call;
}

// The same for the backward kernels, whose every output element is written when `grad` is defined.
struct BackwardCall {
  at::Tensor grad, rois, grad_input;
};

inline BackwardCall begin_backward(const char* op, const at::Tensor& grad, const at::Tensor& rois,
                                   double spatial_scale, int64_t ph, int64_t pw, int64_t N, int64_t C,
                                   int64_t H, int64_t W) {
  check_align_backward(op, grad, rois, spatial_scale, ph, pw, N, C, H, W);
  TORCH_CHECK(grad.is_cpu(), s2c::msg(op, ": the CPU kernel was given a ", grad.device().str(), " tensor"));
  check_roi_values_cpu(op, rois, N);
  BackwardCall call;
  if (rois.size(0) == 0 || C == 0 || N == 0) {
    call.grad_input = at::zeros({N, C, H, W}, grad.options());
    return call;
  }
  call.grad_input = at::empty({N, C, H, W}, grad.options());
  advise_huge_pages(call.grad_input.data_ptr(), call.grad_input.nbytes());
  call.grad = grad.contiguous();
  call.rois = rois.contiguous();
  return call;
}

// ROI indices grouped by image, stable within each image: the ROIs of image n are
// order[offsets[n] .. offsets[n + 1]). ROIs whose batch index is invalid are left out.
struct RoiGroups {
  std::vector<int64_t> offsets;
  std::vector<int64_t> order;
};

template <typename scalar_t>
RoiGroups group_rois_by_image(const scalar_t* rois, int64_t num_rois, int64_t batch_size) {
  RoiGroups g;
  g.offsets.assign(batch_size + 1, 0);
  std::vector<int64_t> batch(num_rois);
  for (int64_t k = 0; k < num_rois; ++k) {
    const double b = static_cast<double>(rois[k * 5]);
    batch[k] = (b >= 0 && b < static_cast<double>(batch_size)) ? static_cast<int64_t>(b) : -1;
    if (batch[k] >= 0) {
      ++g.offsets[batch[k] + 1];
    }
  }
  for (int64_t n = 0; n < batch_size; ++n) {
    g.offsets[n + 1] += g.offsets[n];
  }
  g.order.resize(g.offsets[batch_size]);
  std::vector<int64_t> next(g.offsets.begin(), g.offsets.end() - 1);
  for (int64_t k = 0; k < num_rois; ++k) {
    if (batch[k] >= 0) {
      g.order[next[batch[k]]++] = k;
    }
  }
  return g;
}

// dst[i, j] = bilinear sample of `plane` (height x width) at (ys[i], xs[j]), 0 where invalid.
template <typename scalar_t, typename acc_t>
void gather_bilinear(const scalar_t* plane, int64_t width, const AxisSample<acc_t>* ys, int64_t ny,
                     const AxisSample<acc_t>* xs, int64_t nx, scalar_t* dst) {
  for (int64_t i = 0; i < ny; ++i) {
    const AxisSample<acc_t> y = ys[i];
    scalar_t* row = dst + i * nx;
    if (!y.valid) {
      std::fill(row, row + nx, scalar_t(0));
      continue;
    }
    const scalar_t* top = plane + y.lo * width;
    const scalar_t* bottom = top + width;
    for (int64_t j = 0; j < nx; ++j) {
      const AxisSample<acc_t> x = xs[j];
      row[j] = x.valid ? static_cast<scalar_t>(bilinear<acc_t>(top[x.lo], top[x.lo + 1], bottom[x.lo],
                                                               bottom[x.lo + 1], y.frac, x.frac))
                       : scalar_t(0);
    }
  }
}

// The adjoint of gather_bilinear: accumulates grad[i, j] into `plane` (height x width).
template <typename grad_t, typename acc_t>
void scatter_bilinear(const grad_t* grad, const AxisSample<acc_t>* ys, int64_t ny,
                      const AxisSample<acc_t>* xs, int64_t nx, int64_t width, acc_t* plane) {
  for (int64_t i = 0; i < ny; ++i) {
    const AxisSample<acc_t> y = ys[i];
    if (!y.valid) {
      continue;
    }
    acc_t* top = plane + y.lo * width;
    acc_t* bottom = top + width;
    for (int64_t j = 0; j < nx; ++j) {
      const AxisSample<acc_t> x = xs[j];
      if (!x.valid) {
        continue;
      }
      const acc_t g = static_cast<acc_t>(grad[i * nx + j]);
      const acc_t gy0 = g * (acc_t(1) - y.frac);
      const acc_t gy1 = g * y.frac;
      top[x.lo] += gy0 * (acc_t(1) - x.frac);
      top[x.lo + 1] += gy0 * x.frac;
      bottom[x.lo] += gy1 * (acc_t(1) - x.frac);
      bottom[x.lo + 1] += gy1 * x.frac;
    }
  }
}

}  // namespace cpu
}  // namespace s2c

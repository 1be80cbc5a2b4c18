// Helpers of the CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include "../align_checks.h"

namespace s2c {
namespace cuda {

constexpr int kThreads = 256;

#define S2C_GRID_STRIDE(i, n)                                               \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

inline int64_t blocks_for(int64_t n) {
  // Grid-stride loops cover the rest.
  return std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t(1) << 20);
}

// The checks of a call that need no values, for a CUDA kernel.
inline void check_forward_cuda(const char* op, const at::Tensor& input, const at::Tensor& rois,
                               double spatial_scale, int64_t ph, int64_t pw) {
  check_align_forward(op, input, rois, spatial_scale, ph, pw);
  TORCH_CHECK(input.is_cuda(),
              s2c::msg(op, ": the CUDA kernel was given a ", input.device().str(), " tensor"));
}

inline void check_backward_cuda(const char* op, const at::Tensor& grad, const at::Tensor& rois,
                                double spatial_scale, int64_t ph, int64_t pw, int64_t N, int64_t C, int64_t H,
                                int64_t W) {
  check_align_backward(op, grad, rois, spatial_scale, ph, pw, N, C, H, W);
  TORCH_CHECK(grad.is_cuda(), s2c::msg(op, ": the CUDA kernel was given a ", grad.device().str(), " tensor"));
}

// Value checks of a CUDA `rois` (finite, integral batch indices in [0, batch_size)). The constructor
// launches one small kernel and an asynchronous copy of its verdict to pinned memory; wait()
// synchronises on that copy and raises. A forward launches its own kernels in between (they are
// memory-safe on any values: an ROI with an invalid batch index gives NaN in the forward and nothing
// in the backward), so the synchronisation overlaps them.
// Skipped while the stream is being captured into a CUDA graph, where a synchronisation is not allowed.
// At most one check per thread and device may be pending: each op waits before it returns.
struct VerdictSlot;

class RoiValueCheck {
 public:
  RoiValueCheck(const char* op, const at::Tensor& rois, int64_t batch_size);
  ~RoiValueCheck();
  RoiValueCheck(const RoiValueCheck&) = delete;
  RoiValueCheck& operator=(const RoiValueCheck&) = delete;
  // Raises on a problem; returns whether the ROIs were checked and found in non-decreasing
  // batch-index order (always true for no ROIs, false when the check was skipped).
  bool wait();

 private:
  const char* op_;
  int64_t batch_size_;
  bool empty_ = false;
  VerdictSlot* pending_ = nullptr;  // the thread's pinned verdict and its copy event
};

}  // namespace cuda
}  // namespace s2c

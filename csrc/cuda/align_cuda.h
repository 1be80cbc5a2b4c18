// Helpers of the CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

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

// Value checks of a CUDA `rois` (finite, integral batch indices in [0, batch_size)): one small kernel
// and one synchronisation. Skipped while the stream is being captured into a CUDA graph, where a
// synchronisation is not allowed; the kernels stay memory-safe on such input (an ROI with an invalid
// batch index gives NaN in the forward and nothing in the backward).
// Returns whether the ROIs were checked and found in non-decreasing batch-index order.
bool check_roi_values_cuda(const char* op, const at::Tensor& rois, int64_t batch_size);

}  // namespace cuda
}  // namespace s2c

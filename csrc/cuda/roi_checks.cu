#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/cuda/CUDAGuard.h>

#include "../align_checks.h"
#include "align_cuda.h"

namespace s2c {
namespace cuda {
namespace {

// Not a problem: set when a batch index is below the one before it.
constexpr unsigned long long kUnsorted = 1ull << 32;

// One block: result[0] = OR of the problem flags (and kUnsorted), result[1] = first offending row. A single
// launch that writes its whole result, so no buffer needs clearing first.
template <typename scalar_t>
__global__ void roi_check_kernel(const scalar_t* rois, int64_t num_rois, int64_t batch_size,
                                 int64_t* result) {
  __shared__ unsigned long long flags_all, first_row;
  if (threadIdx.x == 0) {
    flags_all = 0;
    first_row = static_cast<unsigned long long>(num_rois);
  }
  __syncthreads();
  for (int64_t k = threadIdx.x; k < num_rois; k += blockDim.x) {
    unsigned long long flags = 0;
    for (int j = 0; j < 5; ++j) {
      if (!isfinite(static_cast<double>(rois[k * 5 + j]))) {
        flags |= kRoiNonFinite;
      }
    }
    const double b = static_cast<double>(rois[k * 5]);
    if (!flags) {
      if (b != floor(b)) {
        flags |= kRoiBatchNotInteger;
      } else if (b < 0 || b >= static_cast<double>(batch_size)) {
        flags |= kRoiBatchOutOfRange;
      }
    }
    if (flags) {
      atomicOr(&flags_all, flags);
      atomicMin(&first_row, static_cast<unsigned long long>(k));
    }
    if (k > 0 && static_cast<double>(rois[(k - 1) * 5]) > b) {
      atomicOr(&flags_all, kUnsorted);
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    result[0] = static_cast<int64_t>(flags_all);
    result[1] = static_cast<int64_t>(first_row);
  }
}

}  // namespace

RoiValueCheck::RoiValueCheck(const char* op, const at::Tensor& rois_, int64_t batch_size)
    : op_(op), batch_size_(batch_size) {
  const int64_t K = rois_.size(0);
  if (K == 0) {
    empty_ = true;
    return;
  }
  if (c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None) {
    return;
  }
  c10::cuda::CUDAGuard guard(rois_.device());
  const at::Tensor rois = rois_.contiguous();
  at::Tensor result = at::empty({2}, rois.options().dtype(at::kLong));
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, rois.scalar_type(), "check_roi_values", [&] {
    roi_check_kernel<scalar_t><<<1, 1024, 0, stream>>>(rois.const_data_ptr<scalar_t>(), K, batch_size,
                                                       result.mutable_data_ptr<int64_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  verdict_ = at::empty({2}, at::TensorOptions().dtype(at::kLong).pinned_memory(true));
  verdict_.copy_(result, /*non_blocking=*/true);
  copied_.record(stream);
}

bool RoiValueCheck::wait() {
  if (empty_ || !verdict_.defined()) {
    return empty_;
  }
  copied_.synchronize();
  const int64_t* values = verdict_.const_data_ptr<int64_t>();
  const int64_t problems = values[0] & ~static_cast<int64_t>(kUnsorted);
  if (problems) {
    raise_roi_problem(op_, problems, values[1], batch_size_);
  }
  return !(values[0] & static_cast<int64_t>(kUnsorted));
}

}  // namespace cuda
}  // namespace s2c

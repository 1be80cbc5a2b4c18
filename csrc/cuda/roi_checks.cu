#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/cuda/CUDAGuard.h>

#include <memory>
#include <vector>

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

// A pinned home for the check kernel's verdict and an event marking its copy: one per thread and
// device, made on first use and reused (a pinned allocation per call cost more than the check).
struct VerdictSlot {
  int64_t* host = nullptr;
  cudaEvent_t copied = nullptr;
  ~VerdictSlot() {
    // Errors are ignored: at process exit the CUDA runtime may already be gone.
    if (copied)
      (void)cudaEventDestroy(copied);
    if (host)
      (void)cudaFreeHost(host);
  }
};

namespace {

VerdictSlot* verdict_slot(c10::DeviceIndex device) {
  thread_local std::vector<std::unique_ptr<VerdictSlot>> slots;
  if (static_cast<size_t>(device) >= slots.size()) {
    slots.resize(device + 1);
  }
  if (!slots[device]) {
    auto slot = std::make_unique<VerdictSlot>();
    C10_CUDA_CHECK(
        cudaHostAlloc(reinterpret_cast<void**>(&slot->host), 2 * sizeof(int64_t), cudaHostAllocDefault));
    C10_CUDA_CHECK(cudaEventCreateWithFlags(&slot->copied, cudaEventDisableTiming));
    slots[device] = std::move(slot);
  }
  return slots[device].get();
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
  VerdictSlot* slot = verdict_slot(rois.device().index());
  C10_CUDA_CHECK(cudaMemcpyAsync(slot->host, result.const_data_ptr<int64_t>(), 2 * sizeof(int64_t),
                                 cudaMemcpyDeviceToHost, stream));
  C10_CUDA_CHECK(cudaEventRecord(slot->copied, stream));
  pending_ = slot;
}

RoiValueCheck::~RoiValueCheck() {
  // Not waited for (an error came first): let the copy land before the slot is reused.
  if (pending_) {
    (void)cudaEventSynchronize(pending_->copied);
  }
}

bool RoiValueCheck::wait() {
  if (!pending_) {
    return empty_;
  }
  VerdictSlot* slot = pending_;
  pending_ = nullptr;
  C10_CUDA_CHECK(cudaEventSynchronize(slot->copied));
  const int64_t flags = slot->host[0], first_row = slot->host[1];
  const int64_t problems = flags & ~static_cast<int64_t>(kUnsorted);
  if (problems) {
    raise_roi_problem(op_, problems, first_row, batch_size_);
  }
  return !(flags & static_cast<int64_t>(kUnsorted));
}

}  // namespace cuda
}  // namespace s2c

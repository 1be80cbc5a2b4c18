// GAIC RoIAlign on the CPU: a ph x pw grid of bilinear samples spread over each ROI. The backward is
// the true adjoint of the forward (the official CPU backward is not), computed per (image, channel)
// plane so that threads never write the same element.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "align_cpu.h"

namespace s2c {
namespace cpu {
namespace {

constexpr const char* kForward = "s2c::gaic_roi_align";
constexpr const char* kBackward = "s2c::_gaic_roi_align_backward";
constexpr int64_t kGrainElements = 1 << 15;

// Sample points of every ROI: ys[k * ph + i], xs[k * pw + j].
template <typename acc_t>
struct RoiSamples {
  std::vector<AxisSample<acc_t>> ys, xs;
};

template <typename scalar_t, typename acc_t>
RoiSamples<acc_t> roi_samples(const scalar_t* rois, int64_t num_rois, acc_t scale, int64_t ph, int64_t pw,
                              int64_t height, int64_t width) {
  RoiSamples<acc_t> s;
  s.ys.resize(num_rois * ph);
  s.xs.resize(num_rois * pw);
  for (int64_t k = 0; k < num_rois; ++k) {
    const ScaledRoi<acc_t> r = scale_roi<scalar_t, acc_t>(rois + k * 5, scale);
    const acc_t step_y = roi_step<acc_t>(r.y1, r.y2, ph);
    const acc_t step_x = roi_step<acc_t>(r.x1, r.x2, pw);
    for (int64_t i = 0; i < ph; ++i) {
      s.ys[k * ph + i] = axis_sample<acc_t>(roi_position<acc_t>(i, r.y1, step_y), height);
    }
    for (int64_t j = 0; j < pw; ++j) {
      s.xs[k * pw + j] = axis_sample<acc_t>(roi_position<acc_t>(j, r.x1, step_x), width);
    }
  }
  return s;
}

at::Tensor gaic_roi_align_forward(const at::Tensor& input_, const at::Tensor& rois_, double spatial_scale,
                                  int64_t ph, int64_t pw) {
  ForwardCall call = begin_forward(kForward, input_, rois_, spatial_scale, ph, pw);
  at::Tensor out = call.out;
  if (!call.input.defined()) {
    return out;
  }
  const at::Tensor& input = call.input;
  const at::Tensor& rois = call.rois;
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t K = rois.size(0);
  const int64_t plane = ph * pw;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), kForward, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* in = input.const_data_ptr<scalar_t>();
    const scalar_t* roi = rois.const_data_ptr<scalar_t>();
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    const RoiSamples<acc_t> s =
        roi_samples<scalar_t, acc_t>(roi, K, static_cast<acc_t>(spatial_scale), ph, pw, H, W);
    const int64_t grain = std::max<int64_t>(1, kGrainElements / (4 * plane));
    at::parallel_for(0, K * C, grain, [&](int64_t begin, int64_t end) {
      for (int64_t q = begin; q < end; ++q) {
        const int64_t k = q / C, c = q % C;
        const int64_t n = static_cast<int64_t>(roi[k * 5]);
        gather_bilinear<scalar_t, acc_t>(in + (n * C + c) * H * W, W, s.ys.data() + k * ph, ph,
                                         s.xs.data() + k * pw, pw, dst + q * plane);
      }
    });
  });
  return out;
}

at::Tensor gaic_roi_align_backward(const at::Tensor& grad_, const at::Tensor& rois_, double spatial_scale,
                                   int64_t ph, int64_t pw, int64_t N, int64_t C, int64_t H, int64_t W) {
  BackwardCall call = begin_backward(kBackward, grad_, rois_, spatial_scale, ph, pw, N, C, H, W);
  at::Tensor grad_input = call.grad_input;
  if (!call.grad.defined()) {
    return grad_input;
  }
  const at::Tensor& grad = call.grad;
  const at::Tensor& rois = call.rois;
  const int64_t K = rois.size(0);
  const int64_t plane = ph * pw;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), kBackward, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const scalar_t* roi = rois.const_data_ptr<scalar_t>();
    scalar_t* gin = grad_input.mutable_data_ptr<scalar_t>();
    const RoiSamples<acc_t> s =
        roi_samples<scalar_t, acc_t>(roi, K, static_cast<acc_t>(spatial_scale), ph, pw, H, W);
    const RoiGroups groups = group_rois_by_image(roi, K, N);
    const int64_t grain =
        std::max<int64_t>(1, kGrainElements / (4 * plane * (1 + K / std::max<int64_t>(N, 1))));
    at::parallel_for(0, N * C, grain, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> acc(H * W);
      for (int64_t p = begin; p < end; ++p) {
        const int64_t n = p / C, c = p % C;
        std::fill(acc.begin(), acc.end(), acc_t(0));
        for (int64_t r = groups.offsets[n]; r < groups.offsets[n + 1]; ++r) {
          const int64_t k = groups.order[r];
          scatter_bilinear<scalar_t, acc_t>(g + (k * C + c) * plane, s.ys.data() + k * ph, ph,
                                            s.xs.data() + k * pw, pw, W, acc.data());
        }
        std::transform(acc.begin(), acc.end(), gin + p * H * W,
                       [](acc_t v) { return static_cast<scalar_t>(v); });
      }
    });
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(s2c, CPU, m) {
  m.impl("gaic_roi_align", &gaic_roi_align_forward);
  m.impl("_gaic_roi_align_backward", &gaic_roi_align_backward);
}

}  // namespace cpu
}  // namespace s2c

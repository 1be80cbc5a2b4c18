#include "align_checks.h"

#include <ATen/Dispatch.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <string>

namespace s2c {
namespace {

std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) {
    s += (d ? ", " : "") + std::to_string(t.size(d));
  }
  return s + "]";
}

const char* dtype_of(const at::Tensor& t) {
  return c10::toString(t.scalar_type());
}

void check_common(const char* op, const at::Tensor& features, const char* features_name,
                  const at::Tensor& rois, double spatial_scale, int64_t pooled_height, int64_t pooled_width) {
  TORCH_CHECK_TYPE(
      at::isFloatingType(features.scalar_type()),
      s2c::msg(op, ": ", features_name, " must be a floating-point tensor, got ", dtype_of(features)));
  TORCH_CHECK_VALUE(
      rois.dim() == 2 && rois.size(1) == 5,
      s2c::msg(op, ": rois must have shape (K, 5) with rows (batch_index, x1, y1, x2, y2), got shape ",
               shape_of(rois)));
  TORCH_CHECK_TYPE(rois.scalar_type() == features.scalar_type(),
                   s2c::msg(op, ": rois must have the dtype of ", features_name, " (", dtype_of(features),
                            "), got ", dtype_of(rois)));
  TORCH_CHECK(rois.device() == features.device(),
              s2c::msg(op, ": ", features_name, " and rois must be on the same device, got ",
                       features.device().str(), " and ", rois.device().str()));
  TORCH_CHECK_VALUE(std::isfinite(spatial_scale) && spatial_scale > 0,
                    s2c::msg(op, ": spatial_scale must be a finite positive number, got ", spatial_scale));
  // The official kernels divide by (pooled size - 1).
  TORCH_CHECK_VALUE(pooled_height >= 2 && pooled_width >= 2,
                    s2c::msg(op, ": pooled_height and pooled_width must be at least 2, got (", pooled_height,
                             ", ", pooled_width, ")"));
}

void check_feature_size(const char* op, int64_t height, int64_t width) {
  // Bilinear sampling reads the 2x2 neighbourhood of every point.
  TORCH_CHECK_VALUE(height >= 2 && width >= 2,
                    s2c::msg(op, ": the feature map must be at least 2x2, got ", height, "x", width));
}

}  // namespace

void check_align_forward(const char* op, const at::Tensor& input, const at::Tensor& rois,
                         double spatial_scale, int64_t pooled_height, int64_t pooled_width) {
  TORCH_CHECK_VALUE(input.dim() == 4,
                    s2c::msg(op, ": input must be a 4-D tensor (N, C, H, W), got shape ", shape_of(input)));
  check_common(op, input, "input", rois, spatial_scale, pooled_height, pooled_width);
  check_feature_size(op, input.size(2), input.size(3));
}

void check_align_backward(const char* op, const at::Tensor& grad, const at::Tensor& rois,
                          double spatial_scale, int64_t pooled_height, int64_t pooled_width,
                          int64_t batch_size, int64_t channels, int64_t height, int64_t width) {
  check_common(op, grad, "grad", rois, spatial_scale, pooled_height, pooled_width);
  TORCH_CHECK_VALUE(
      batch_size >= 0 && channels >= 0,
      s2c::msg(op, ": batch_size and channels must be non-negative, got ", batch_size, " and ", channels));
  check_feature_size(op, height, width);
  TORCH_CHECK_VALUE(
      grad.dim() == 4 && grad.size(0) == rois.size(0) && grad.size(1) == channels &&
          grad.size(2) == pooled_height && grad.size(3) == pooled_width,
      s2c::msg(op, ": grad must have shape (K, C, pooled_height, pooled_width) = (", rois.size(0), ", ",
               channels, ", ", pooled_height, ", ", pooled_width, "), got ", shape_of(grad)));
}

void raise_roi_problem(const char* op, int64_t flags, int64_t first_row, int64_t batch_size) {
  TORCH_CHECK_VALUE(!(flags & kRoiNonFinite),
                    s2c::msg(op, ": rois must be finite; row ", first_row, " holds NaN or infinity"));
  TORCH_CHECK_VALUE(!(flags & kRoiBatchNotInteger),
                    s2c::msg(op, ": the batch index (column 0 of rois) must be a whole number; row ",
                             first_row, " is not"));
  TORCH_CHECK_INDEX(!(flags & kRoiBatchOutOfRange),
                    s2c::msg(op, ": batch index out of range: row ", first_row,
                             " of rois names an image outside [0, ", batch_size, ")"));
}

void check_roi_values_cpu(const char* op, const at::Tensor& rois, int64_t batch_size) {
  const at::Tensor r = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, r.scalar_type(), "check_roi_values", [&] {
    const scalar_t* p = r.const_data_ptr<scalar_t>();
    for (int64_t k = 0; k < r.size(0); ++k) {
      int64_t flags = 0;
      for (int64_t j = 0; j < 5; ++j) {
        if (!std::isfinite(static_cast<double>(p[k * 5 + j]))) {
          flags |= kRoiNonFinite;
        }
      }
      const double b = static_cast<double>(p[k * 5]);
      if (!(flags & kRoiNonFinite)) {
        if (b != std::floor(b)) {
          flags |= kRoiBatchNotInteger;
        } else if (b < 0 || b >= static_cast<double>(batch_size)) {
          flags |= kRoiBatchOutOfRange;
        }
      }
      if (flags) {
        raise_roi_problem(op, flags, k, batch_size);
      }
    }
  });
}

}  // namespace s2c

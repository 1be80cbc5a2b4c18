// Input validation shared by every s2c align kernel: every problem is reported as a Python exception
// naming the operator and the offending argument, before any kernel reads memory.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <type_traits>

namespace s2c {

namespace detail {
inline void append(std::string& s, const char* v) {
  s += v;
}
inline void append(std::string& s, const std::string& v) {
  s += v;
}
template <typename T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
inline void append(std::string& s, T v) {
  s += std::to_string(v);
}
}  // namespace detail

// An error message as one std::string, which TORCH_CHECK passes through without an ostream.
// Formatting numbers through c10::str's ostringstream crashed the process when the extension was
// built by nvcc 13.0 + g++ 13 against torch 2.11 (the GPU machine): the .so carried its own copy of
// libstdc++'s stream templates and their locale facet ids.
template <typename... Args>
std::string msg(const Args&... args) {
  std::string s;
  (detail::append(s, args), ...);
  return s;
}

// Shapes, dtypes, devices and sizes of a forward call (nothing that needs the tensors' values).
void check_align_forward(const char* op, const at::Tensor& input, const at::Tensor& rois,
                         double spatial_scale, int64_t pooled_height, int64_t pooled_width);

// The same for a backward call, whose feature size is given explicitly.
void check_align_backward(const char* op, const at::Tensor& grad, const at::Tensor& rois,
                          double spatial_scale, int64_t pooled_height, int64_t pooled_width,
                          int64_t batch_size, int64_t channels, int64_t height, int64_t width);

// Problems found in the values of `rois`, as bits of a flag word.
enum RoiProblem : int64_t {
  kRoiNonFinite = 1,
  kRoiBatchNotInteger = 2,
  kRoiBatchOutOfRange = 4,
};

// Raises for `flags` != 0, naming the first offending row.
void raise_roi_problem(const char* op, int64_t flags, int64_t first_row, int64_t batch_size);

// Value checks of a CPU `rois` (finite, integral batch indices in [0, batch_size)).
void check_roi_values_cpu(const char* op, const at::Tensor& rois, int64_t batch_size);

}  // namespace s2c

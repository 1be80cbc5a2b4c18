// The s2c operator library: every schema lives here; kernels are registered per device in cpu/ and
// cuda/, fake kernels and autograd in s2c_ops/ops/_registration.py. s2c_ops/ops/fallback.py defines the
// same schemas in Python when this library cannot be loaded: keep the two in step.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// Importing s2c_ops._C loads this library and so registers the operators.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(s2c, m) {
  m.def(
      "rod_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
      "SymInt pooled_width) -> Tensor");
  m.def(
      "gaic_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
      "SymInt pooled_width) -> Tensor");
  m.def(
      "_rod_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
      "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor");
  m.def(
      "_gaic_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
      "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor");
}

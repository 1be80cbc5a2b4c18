// Autocast for the align operators, as torchvision does for roi_align: run in float32 and return the
// input's dtype.
#include <ATen/autocast_mode.h>
#include <torch/library.h>
#include <torch/types.h>

namespace s2c {
namespace {

template <c10::DispatchKey autocast_key, c10::DeviceType device_type>
struct AlignAutocast {
  template <const char* name>
  static at::Tensor call(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                         c10::SymInt pooled_height, c10::SymInt pooled_width) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(autocast_key);
    static auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow(name, "")
            .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, c10::SymInt, c10::SymInt)>();
    return op
        .call(at::autocast::cached_cast(at::kFloat, input, device_type),
              at::autocast::cached_cast(at::kFloat, rois, device_type), spatial_scale,
              std::move(pooled_height), std::move(pooled_width))
        .to(input.scalar_type());
  }
};

constexpr char kRodAlign[] = "s2c::rod_align";
constexpr char kGaicRoiAlign[] = "s2c::gaic_roi_align";

}  // namespace

TORCH_LIBRARY_IMPL(s2c, Autocast, m) {
  using A = AlignAutocast<c10::DispatchKey::Autocast, c10::DeviceType::CUDA>;
  m.impl("rod_align", TORCH_FN(A::call<kRodAlign>));
  m.impl("gaic_roi_align", TORCH_FN(A::call<kGaicRoiAlign>));
}

TORCH_LIBRARY_IMPL(s2c, AutocastCPU, m) {
  using A = AlignAutocast<c10::DispatchKey::AutocastCPU, c10::DeviceType::CPU>;
  m.impl("rod_align", TORCH_FN(A::call<kRodAlign>));
  m.impl("gaic_roi_align", TORCH_FN(A::call<kGaicRoiAlign>));
}

}  // namespace s2c

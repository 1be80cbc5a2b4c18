// RoDAlign on the CPU. The sampling grid covers the whole feature map and is the same for every ROI,
// so each image is sampled once; an ROI only zeroes the block of samples it contains. The backward
// sums each image's masked gradients first and scatters that sum once per feature plane.
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

constexpr const char* kForward = "s2c::rod_align";
constexpr const char* kBackward = "s2c::_rod_align_backward";
// Elements of work below which at::parallel_for keeps a range on one thread.
constexpr int64_t kGrainElements = 1 << 15;

template <typename acc_t>
struct RodGrid {
  std::vector<acc_t> ypos, xpos;
  std::vector<AxisSample<acc_t>> ys, xs;
};

template <typename acc_t>
RodGrid<acc_t> rod_grid(int64_t height, int64_t width, int64_t ph, int64_t pw) {
  RodGrid<acc_t> g;
  const acc_t step_y = rod_step<acc_t>(height, ph);
  const acc_t step_x = rod_step<acc_t>(width, pw);
  for (int64_t i = 0; i < ph; ++i) {
    g.ypos.push_back(rod_position<acc_t>(i, step_y));
    g.ys.push_back(axis_sample<acc_t>(g.ypos.back(), height));
  }
  for (int64_t j = 0; j < pw; ++j) {
    g.xpos.push_back(rod_position<acc_t>(j, step_x));
    g.xs.push_back(axis_sample<acc_t>(g.xpos.back(), width));
  }
  return g;
}

// The block of grid points an ROI discards: rows [i0, i1) x columns [j0, j1) (the grid is
// monotonic, so the points inside an axis-aligned box form one block).
struct Block {
  int64_t i0 = 0, i1 = 0, j0 = 0, j1 = 0;
  bool empty() const {
    return i0 >= i1 || j0 >= j1;
  }
};

template <typename acc_t>
void span(const std::vector<acc_t>& pos, acc_t lo, acc_t hi, int64_t& first, int64_t& last) {
  first = last = 0;
  bool found = false;
  for (int64_t i = 0; i < static_cast<int64_t>(pos.size()); ++i) {
    if (in_span(pos[i], lo, hi)) {
      if (!found) {
        first = i;
        found = true;
      }
      last = i + 1;
    }
  }
}

template <typename scalar_t, typename acc_t>
std::vector<Block> discarded_blocks(const scalar_t* rois, int64_t num_rois, acc_t scale,
                                    const RodGrid<acc_t>& grid) {
  std::vector<Block> blocks(num_rois);
  for (int64_t k = 0; k < num_rois; ++k) {
    const ScaledRoi<acc_t> r = scale_roi<scalar_t, acc_t>(rois + k * 5, scale);
    span(grid.ypos, r.y1, r.y2, blocks[k].i0, blocks[k].i1);
    span(grid.xpos, r.x1, r.x2, blocks[k].j0, blocks[k].j1);
  }
  return blocks;
}

at::Tensor rod_align_forward(const at::Tensor& input_, const at::Tensor& rois_, double spatial_scale,
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
    const RodGrid<acc_t> grid = rod_grid<acc_t>(H, W, ph, pw);
    const scalar_t* in = input.const_data_ptr<scalar_t>();
    const scalar_t* roi = rois.const_data_ptr<scalar_t>();
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();

    // 1. Sample every image once.
    at::Tensor sampled = at::empty({N, C, ph, pw}, input.options());
    scalar_t* smp = sampled.mutable_data_ptr<scalar_t>();
    const int64_t plane_grain = std::max<int64_t>(1, kGrainElements / (4 * plane));
    at::parallel_for(0, N * C, plane_grain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        gather_bilinear<scalar_t, acc_t>(in + p * H * W, W, grid.ys.data(), ph, grid.xs.data(), pw,
                                         smp + p * plane);
      }
    });

    // 2. Each ROI: a copy of its image's samples with the discarded block zeroed.
    const std::vector<Block> blocks =
        discarded_blocks<scalar_t, acc_t>(roi, K, static_cast<acc_t>(spatial_scale), grid);
    const int64_t roi_grain = std::max<int64_t>(1, kGrainElements / (C * plane));
    at::parallel_for(0, K, roi_grain, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t n = static_cast<int64_t>(roi[k * 5]);
        scalar_t* o = dst + k * C * plane;
        std::copy(smp + n * C * plane, smp + (n + 1) * C * plane, o);
        const Block& b = blocks[k];
        if (b.empty()) {
          continue;
        }
        for (int64_t c = 0; c < C; ++c) {
          for (int64_t i = b.i0; i < b.i1; ++i) {
            scalar_t* row = o + c * plane + i * pw;
            std::fill(row + b.j0, row + b.j1, scalar_t(0));
          }
        }
      }
    });
  });
  return out;
}

at::Tensor rod_align_backward(const at::Tensor& grad_, const at::Tensor& rois_, double spatial_scale,
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
    const RodGrid<acc_t> grid = rod_grid<acc_t>(H, W, ph, pw);
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const scalar_t* roi = rois.const_data_ptr<scalar_t>();
    scalar_t* gin = grad_input.mutable_data_ptr<scalar_t>();
    const std::vector<Block> blocks =
        discarded_blocks<scalar_t, acc_t>(roi, K, static_cast<acc_t>(spatial_scale), grid);
    const RoiGroups groups = group_rois_by_image(roi, K, N);

    // Each (image, channel) plane is owned by one thread: no two threads write the same element.
    const int64_t grain = std::max<int64_t>(1, kGrainElements / (plane * (1 + K / std::max<int64_t>(N, 1))));
    at::parallel_for(0, N * C, grain, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> kept(plane);
      std::vector<acc_t> acc(H * W);
      for (int64_t p = begin; p < end; ++p) {
        const int64_t n = p / C, c = p % C;
        std::fill(kept.begin(), kept.end(), acc_t(0));
        for (int64_t r = groups.offsets[n]; r < groups.offsets[n + 1]; ++r) {
          const int64_t k = groups.order[r];
          const scalar_t* src = g + (k * C + c) * plane;
          const Block& b = blocks[k];
          for (int64_t i = 0; i < ph; ++i) {
            const bool cut = !b.empty() && i >= b.i0 && i < b.i1;
            for (int64_t j = 0; j < pw; ++j) {
              if (!(cut && j >= b.j0 && j < b.j1)) {
                kept[i * pw + j] += static_cast<acc_t>(src[i * pw + j]);
              }
            }
          }
        }
        std::fill(acc.begin(), acc.end(), acc_t(0));
        scatter_bilinear<acc_t, acc_t>(kept.data(), grid.ys.data(), ph, grid.xs.data(), pw, W, acc.data());
        std::transform(acc.begin(), acc.end(), gin + p * H * W,
                       [](acc_t v) { return static_cast<scalar_t>(v); });
      }
    });
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(s2c, CPU, m) {
  m.impl("rod_align", &rod_align_forward);
  m.impl("_rod_align_backward", &rod_align_backward);
}

}  // namespace cpu
}  // namespace s2c

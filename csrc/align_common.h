// Sampling geometry shared by the CPU and CUDA kernels of s2c::rod_align and s2c::gaic_roi_align.
//
// The arithmetic reproduces the official GAIC / S2CNet CPU kernels step by step, including where they
// round to float and where they widen to double, so that points lying on an ROI border are classified
// exactly as the official code classifies them.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define S2C_HOST_DEVICE __host__ __device__
#else
#define S2C_HOST_DEVICE
#endif

namespace s2c {

// One sampling coordinate along an axis: the lower neighbour, the fraction towards the upper one
// (it may exceed 1 on the last row/column, as in the official kernels) and whether the point lies
// inside the feature map.
template <typename acc_t>
struct AxisSample {
  int64_t lo;
  acc_t frac;
  bool valid;
};

template <typename acc_t>
S2C_HOST_DEVICE inline AxisSample<acc_t> axis_sample(acc_t pos, int64_t size) {
  AxisSample<acc_t> s;
  // Written so that NaN positions are invalid too.
  s.valid = pos >= acc_t(0) && pos < static_cast<acc_t>(size);
  if (!s.valid) {
    s.lo = 0;
    s.frac = acc_t(0);
    return s;
  }
  const acc_t fl = ::floor(pos);
  s.lo = fl < static_cast<acc_t>(size - 2) ? static_cast<int64_t>(fl) : size - 2;
  s.frac = pos - static_cast<acc_t>(s.lo);
  return s;
}

// RoDAlign samples the whole feature map: point i of n lies at i * (size - 1.001) / (n - 1).
template <typename acc_t>
S2C_HOST_DEVICE inline acc_t rod_step(int64_t size, int64_t pooled) {
  return static_cast<acc_t>(static_cast<double>(static_cast<acc_t>(size - 1.001)) / (pooled - 1.0));
}

template <typename acc_t>
S2C_HOST_DEVICE inline acc_t rod_position(int64_t index, acc_t step) {
  return static_cast<acc_t>(index) * step;
}

// GAIC RoIAlign spreads n points over [start, end + 1] of the scaled ROI (zero width if inverted).
template <typename acc_t>
S2C_HOST_DEVICE inline acc_t roi_step(acc_t start, acc_t end, int64_t pooled) {
  double extent = static_cast<double>(end - start) + 1.0;
  acc_t clamped = static_cast<acc_t>(extent > 0.0 ? extent : 0.0);
  return static_cast<acc_t>(static_cast<double>(clamped) / (pooled - 1.0));
}

template <typename acc_t>
S2C_HOST_DEVICE inline acc_t roi_position(int64_t index, acc_t start, acc_t step) {
  return static_cast<acc_t>(index) * step + start;
}

// An ROI in feature coordinates. `batch` is the truncated batch index (validated beforehand).
template <typename acc_t>
struct ScaledRoi {
  int64_t batch;
  acc_t x1, y1, x2, y2;
};

template <typename scalar_t, typename acc_t>
S2C_HOST_DEVICE inline ScaledRoi<acc_t> scale_roi(const scalar_t* roi, acc_t scale) {
  ScaledRoi<acc_t> r;
  const acc_t b = static_cast<acc_t>(roi[0]);
  // Out-of-range or NaN indices (possible only when value checks were skipped) map to -1.
  r.batch = b >= acc_t(0) ? static_cast<int64_t>(b) : -1;
  r.x1 = static_cast<acc_t>(roi[1]) * scale;
  r.y1 = static_cast<acc_t>(roi[2]) * scale;
  r.x2 = static_cast<acc_t>(roi[3]) * scale;
  r.y2 = static_cast<acc_t>(roi[4]) * scale;
  return r;
}

// RoDAlign zeroes the samples inside the ROI, bounds included.
template <typename acc_t>
S2C_HOST_DEVICE inline bool in_span(acc_t pos, acc_t lo, acc_t hi) {
  return pos >= lo && pos <= hi;
}

template <typename acc_t>
S2C_HOST_DEVICE inline acc_t bilinear(const acc_t v00, const acc_t v01, const acc_t v10, const acc_t v11,
                                      acc_t fy, acc_t fx) {
  return v00 * (acc_t(1) - fy) * (acc_t(1) - fx) + v01 * (acc_t(1) - fy) * fx + v10 * fy * (acc_t(1) - fx) +
         v11 * fy * fx;
}

}  // namespace s2c

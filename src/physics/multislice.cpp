#include "stemtwin/physics/multislice.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "recorder.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/parallel.hpp"

namespace stemtwin {

namespace detail {
// target("avx2") does not enable FMA, so no multiply-add is contracted in either clone.
__attribute__((target_clones("avx2", "default"))) void cmul_inplace(cfloat* __restrict a, const cfloat* __restrict b,
                                                                    std::size_t n) {
  auto* x = reinterpret_cast<float*>(a);
  const auto* y = reinterpret_cast<const float*>(b);
  for (std::size_t i = 0; i < n; ++i) {
    const float xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = y[2 * i + 1];
    x[2 * i] = xr * yr - xi * yi;
    x[2 * i + 1] = xr * yi + xi * yr;
  }
}

BandRows band_rows(const cfloat* f, std::size_t nx, std::size_t ny) {
  BandRows r{nx, ny, std::vector<std::uint32_t>(ny), std::vector<std::uint32_t>(ny)};
  const cfloat zero(0.0f, 0.0f);
  for (std::size_t j = 0; j < ny; ++j) {
    const cfloat* row = f + j * nx;
    std::size_t lo = 0, hi = nx;
    while (lo < nx && row[lo] != zero) ++lo;
    while (hi > lo && row[hi - 1] != zero) --hi;
    bool fits = true;
    for (std::size_t i = lo; i < hi && fits; ++i) fits = row[i] == zero;
    // Bit patterns matter: a −0 outside the runs would be a product cmul_inplace keeps signed.
    for (std::size_t i = lo; i < hi && fits; ++i) fits = !std::signbit(row[i].real()) && !std::signbit(row[i].imag());
    r.lo[j] = std::uint32_t(fits ? lo : nx);
    r.hi[j] = std::uint32_t(fits ? hi : nx);
  }
  return r;
}

__attribute__((target_clones("avx2", "default"))) void cmul_band_rows(cfloat* __restrict a, const cfloat* __restrict b,
                                                                      const BandRows& rows) {
  const std::size_t nx = rows.nx;
  for (std::size_t j = 0; j < rows.ny; ++j) {
    auto* x = reinterpret_cast<float*>(a + j * nx);
    const auto* y = reinterpret_cast<const float*>(b + j * nx);
    const std::size_t lo = rows.lo[j], hi = rows.hi[j];
    // Written out twice (no helper lambda) so that both runs vectorise inside each clone.
    for (std::size_t i = 0; i < lo; ++i) {
      const float xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = y[2 * i + 1];
      x[2 * i] = xr * yr - xi * yi;
      x[2 * i + 1] = xr * yi + xi * yr;
    }
    if (hi > lo) std::memset(x + 2 * lo, 0, (hi - lo) * 2 * sizeof(float));  // +0.0f is all zero bits
    for (std::size_t i = hi; i < nx; ++i) {
      const float xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = y[2 * i + 1];
      x[2 * i] = xr * yr - xi * yi;
      x[2 * i + 1] = xr * yi + xi * yr;
    }
  }
}
}  // namespace detail

Transmission transmission_functions(const Potential& potential, double energy_eV, const Fft2& fft) {
  const Grid& g = potential.grid;
  if (fft.nx() != g.nx || fft.ny() != g.ny) throw std::invalid_argument("transmission_functions: FFT plan is for another grid");
  const double sigma = interaction_parameter(energy_eV);
  const std::vector<float> mask = g.band_limit_mask();
  const float inv_n = 1.0f / static_cast<float>(g.size());
  Transmission t;
  t.grid = g;
  t.energy_eV = energy_eV;
  t.slice_thickness_A = potential.slice_thickness_A;
  t.slices.resize(potential.num_slices());
  ParallelErrors errors;
#pragma omp parallel for schedule(dynamic)
  for (long s = 0; s < long(potential.num_slices()); ++s) errors.run([&] {
    ComplexBuffer buf(g.size());
    const std::vector<float>& v = potential.slices[std::size_t(s)];
    for (std::size_t i = 0; i < g.size(); ++i) {
      const double phase = sigma * static_cast<double>(v[i]);
      buf[i] = cfloat(static_cast<float>(std::cos(phase)), static_cast<float>(std::sin(phase)));
    }
    fft.forward(buf.data());
    for (std::size_t i = 0; i < g.size(); ++i) buf[i] *= mask[i] * inv_n;
    fft.backward(buf.data());
    t.slices[std::size_t(s)] = std::move(buf);
  });
  errors.rethrow();
  return t;
}

ComplexBuffer fresnel_propagator(const Grid& g, double lambda, double dz, float scale) {
  ComplexBuffer p(g.size());
  const double k2max = g.k_max() * g.k_max();
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const double k2 = g.kx(i) * g.kx(i) + g.ky(j) * g.ky(j);
      if (k2 > k2max) continue;
      const double phase = -kPi * lambda * dz * k2;
      p[j * g.nx + i] = cfloat(static_cast<float>(scale * std::cos(phase)), static_cast<float>(scale * std::sin(phase)));
    }
  return p;
}

ComplexBuffer plane_wave_exit_wave(const Transmission& t, const Fft2& fft) {
  const Grid& g = t.grid;
  const double lambda = wavelength_A(t.energy_eV);
  const float inv_n = 1.0f / static_cast<float>(g.size());
  ComplexBuffer psi(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) psi[i] = cfloat(1.0f, 0.0f);
  ComplexBuffer prop;
  double prop_dz = -1;
  for (std::size_t s = 0; s < t.num_slices(); ++s) {
    if (t.slice_thickness_A[s] != prop_dz) {
      prop_dz = t.slice_thickness_A[s];
      prop = fresnel_propagator(g, lambda, prop_dz, inv_n);
    }
    const cfloat* ts = t.slices[s].data();
    for (std::size_t i = 0; i < g.size(); ++i) psi[i] *= ts[i];
    fft.forward(psi.data());
    for (std::size_t i = 0; i < g.size(); ++i) psi[i] *= prop[i];
    fft.backward(psi.data());
  }
  return psi;
}

}  // namespace stemtwin

#pragma once
// RAII FFTW plans for 2-D single-precision complex transforms on a Grid, and aligned buffers.
//
// One Fft2 serves any number of threads: plans are created once (under a lock, since
// FFTW's planner is not thread-safe) and executed with fftwf_execute_dft on each thread's
// own buffers (thread-safe). Buffers must come from `ComplexBuffer` (FFTW-aligned).
// Transforms are unnormalised, in place: forward is e^{−2πi k·r}, backward e^{+2πi k·r}.
#include <complex>
#include <cstddef>
#include <memory>

#include "stemtwin/grid.hpp"

namespace stemtwin {

using cfloat = std::complex<float>;

/// FFTW-aligned array of complex floats (fftwf_malloc), zero-initialised.
class ComplexBuffer {
 public:
  ComplexBuffer() = default;
  explicit ComplexBuffer(std::size_t n);
  ComplexBuffer(const ComplexBuffer& o);
  ComplexBuffer& operator=(const ComplexBuffer& o);
  ComplexBuffer(ComplexBuffer&&) noexcept = default;
  ComplexBuffer& operator=(ComplexBuffer&&) noexcept = default;
  cfloat* data() { return ptr_.get(); }
  const cfloat* data() const { return ptr_.get(); }
  std::size_t size() const { return n_; }
  cfloat& operator[](std::size_t i) { return ptr_.get()[i]; }
  const cfloat& operator[](std::size_t i) const { return ptr_.get()[i]; }

 private:
  struct Free {
    void operator()(cfloat* p) const;
  };
  std::unique_ptr<cfloat, Free> ptr_;
  std::size_t n_ = 0;
};

enum class FftPlanning {
  Estimate,  ///< heuristic plan: deterministic, the same bytes run after run (default)
  Measure,   ///< timed plan: faster transforms, but the chosen algorithm (and so the last
             ///< bits of results) may differ between runs
};

class Fft2 {
 public:
  Fft2(const Grid& grid, FftPlanning planning = FftPlanning::Estimate);
  ~Fft2();
  Fft2(const Fft2&) = delete;
  Fft2& operator=(const Fft2&) = delete;

  void forward(cfloat* data) const;   ///< in place, data from ComplexBuffer
  void backward(cfloat* data) const;  ///< in place, unnormalised
  std::size_t nx() const { return nx_; }
  std::size_t ny() const { return ny_; }

 private:
  std::size_t nx_, ny_;
  void* fwd_ = nullptr;
  void* bwd_ = nullptr;
};

}  // namespace stemtwin

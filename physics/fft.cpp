#include "stemtwin/fft.hpp"

#include <fftw3.h>

#include <algorithm>
#include <mutex>
#include <new>
#include <stdexcept>

namespace stemtwin {
namespace {
std::mutex& planner_mutex() {
  static std::mutex m;  // FFTW's planner is process-wide and not thread-safe
  return m;
}
}  // namespace

void ComplexBuffer::Free::operator()(cfloat* p) const { fftwf_free(p); }

ComplexBuffer::ComplexBuffer(std::size_t n) : n_(n) {
  auto* p = static_cast<cfloat*>(fftwf_malloc(sizeof(cfloat) * std::max<std::size_t>(n, 1)));
  if (!p) throw std::bad_alloc();
  std::fill(p, p + n, cfloat(0.0f, 0.0f));
  ptr_.reset(p);
}

ComplexBuffer::ComplexBuffer(const ComplexBuffer& o) : ComplexBuffer(o.n_) {
  std::copy(o.data(), o.data() + o.n_, data());
}

ComplexBuffer& ComplexBuffer::operator=(const ComplexBuffer& o) {
  if (this != &o) *this = ComplexBuffer(o);
  return *this;
}

Fft2::Fft2(const Grid& grid, FftPlanning planning) : nx_(grid.nx), ny_(grid.ny) {
  ComplexBuffer tmp(grid.size());
  auto* a = reinterpret_cast<fftwf_complex*>(tmp.data());
  const unsigned flags = planning == FftPlanning::Measure ? FFTW_MEASURE : FFTW_ESTIMATE;
  std::lock_guard<std::mutex> lock(planner_mutex());
  fwd_ = fftwf_plan_dft_2d(static_cast<int>(ny_), static_cast<int>(nx_), a, a, FFTW_FORWARD, flags);
  bwd_ = fftwf_plan_dft_2d(static_cast<int>(ny_), static_cast<int>(nx_), a, a, FFTW_BACKWARD, flags);
  if (!fwd_ || !bwd_) throw std::runtime_error("FFTW could not plan a " + std::to_string(nx_) + "×" + std::to_string(ny_) + " transform");
}

Fft2::~Fft2() {
  std::lock_guard<std::mutex> lock(planner_mutex());
  if (fwd_) fftwf_destroy_plan(static_cast<fftwf_plan>(fwd_));
  if (bwd_) fftwf_destroy_plan(static_cast<fftwf_plan>(bwd_));
}

void Fft2::forward(cfloat* data) const {
  auto* a = reinterpret_cast<fftwf_complex*>(data);
  fftwf_execute_dft(static_cast<fftwf_plan>(fwd_), a, a);
}

void Fft2::backward(cfloat* data) const {
  auto* a = reinterpret_cast<fftwf_complex*>(data);
  fftwf_execute_dft(static_cast<fftwf_plan>(bwd_), a, a);
}

}  // namespace stemtwin

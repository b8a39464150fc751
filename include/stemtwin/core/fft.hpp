#pragma once
// RAII FFTW plans for 2-D single-precision complex transforms on a Grid, and aligned buffers.
//
// One Fft2 serves any number of threads: plans are created once (under a lock, since
// FFTW's planner is not thread-safe) and executed with fftwf_execute_dft on each thread's
// own buffers (thread-safe). Buffers must come from `ComplexBuffer` (FFTW-aligned).
// Transforms are unnormalised, in place: forward is e^{−2πi k·r}, backward e^{+2πi k·r}.
//
// Reproducibility: the bits of a transform depend only on the plan (the algorithm FFTW
// chose), never on timing at execution. `plan_id()` names the plan, so a result can record
// which one produced it. FftPlanning::Wisdom (the engine's default) gets FFTW_MEASURE
// speed with a stable plan: the first plan of a grid size on a machine is measured once and
// stored as FFTW wisdom in a file; every later plan is rebuilt from that file alone
// (FFTW_WISDOM_ONLY), so the same file gives the same plan and the same bytes. See
// docs/physics.md, "FFT plans and reproducibility".
#include <complex>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "stemtwin/core/grid.hpp"

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
  Estimate,  ///< heuristic plan (FFTW_ESTIMATE): deterministic everywhere, no file, slower
  Measure,   ///< timed plan (FFTW_MEASURE) made afresh in every process: fastest, but the
             ///< chosen algorithm (and so the last bits of results) may differ between runs
  Wisdom,    ///< FFTW_MEASURE plan measured once per machine and grid, stored as wisdom
             ///< (wisdom_file_path()) and reused: fast and the same bytes run after run
};

/// The wisdom file used by FftPlanning::Wisdom, in this order: `setting` if not empty; the
/// environment variable STEMTWIN_FFTW_WISDOM; $XDG_CACHE_HOME/stemtwin/<name>;
/// $HOME/.cache/stemtwin/<name>; "" when none of these exists (plans are then measured in
/// memory only, with a warning). <name> = fftw-wisdom-<FFTW version>-<CPU model>, so a
/// machine or library change never reuses foreign wisdom.
std::string wisdom_file_path(const std::string& setting = {});

class Fft2 {
 public:
  /// `wisdom_file`: see wisdom_file_path(); used only with FftPlanning::Wisdom.
  ///
  /// With Wisdom, a missing, unreadable or corrupt file is never fatal: it is reported in
  /// warnings(), the plan is measured, and the file is (re)written atomically (temporary
  /// file + rename) under an advisory lock (<file>.lock), so concurrent processes neither
  /// see a half-written file nor measure the same size twice.
  Fft2(const Grid& grid, FftPlanning planning = FftPlanning::Estimate, const std::string& wisdom_file = {});
  ~Fft2();
  Fft2(const Fft2&) = delete;
  Fft2& operator=(const Fft2&) = delete;

  void forward(cfloat* data) const;   ///< in place, data from ComplexBuffer
  void backward(cfloat* data) const;  ///< in place, unnormalised
  std::size_t nx() const { return nx_; }
  std::size_t ny() const { return ny_; }

  FftPlanning planning() const { return planning_; }
  /// Short name of the plan pair: 16 hex digits of a hash of fftwf_sprint_plan of the forward
  /// and backward plans. Equal ids ⇒ the same algorithms ⇒ the same bytes on this machine.
  const std::string& plan_id() const { return plan_id_; }
  /// The full fftwf_sprint_plan text of both plans (for logs and bug reports).
  const std::string& plan_text() const { return plan_text_; }
  /// Problems met while planning (wisdom file missing its directory, corrupt, unwritable).
  const std::vector<std::string>& warnings() const { return warnings_; }
  /// The wisdom file actually used ("" unless planning is Wisdom and a path was found).
  const std::string& wisdom_file() const { return wisdom_file_; }

 private:
  std::size_t nx_, ny_;
  FftPlanning planning_;
  void* fwd_ = nullptr;
  void* bwd_ = nullptr;
  std::string plan_id_, plan_text_, wisdom_file_;
  std::vector<std::string> warnings_;
};

}  // namespace stemtwin

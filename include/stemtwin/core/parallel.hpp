#pragma once
// Exceptions out of OpenMP parallel regions. An exception that leaves a parallel region (or
// a worksharing loop's body) calls std::terminate; a region must therefore catch inside and
// hand the error to the thread that started it:
//
//   ParallelErrors errors;
//   #pragma omp parallel
//   {
//     #pragma omp for
//     for (long i = 0; i < n; ++i) errors.run([&] { work(i); });
//   }
//   errors.rethrow();  // the first exception any thread threw, on the calling thread
//
// After the first error the remaining work items are skipped (run() returns at once), but
// every thread still reaches the region's barriers, so nothing hangs.
#include <atomic>
#include <exception>
#include <mutex>

namespace stemtwin {

class ParallelErrors {
 public:
  /// Runs f() unless an error was already recorded; records what f throws.
  template <class F>
  void run(F&& f) noexcept {
    if (failed()) return;
    try {
      f();
    } catch (...) {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!first_) first_ = std::current_exception();
      failed_.store(true, std::memory_order_release);
    }
  }
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  /// Rethrows the first recorded exception (call after the region, on the calling thread).
  void rethrow() const {
    if (failed()) std::rethrow_exception(first_);
  }

 private:
  std::mutex mutex_;
  std::exception_ptr first_;
  std::atomic<bool> failed_{false};
};

}  // namespace stemtwin

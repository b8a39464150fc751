#include "stemtwin/core/fft.hpp"

#include <fcntl.h>
#include <fftw3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <new>
#include <stdexcept>

namespace stemtwin {
namespace {
std::mutex& planner_mutex() {
  static std::mutex m;  // FFTW's planner (and its wisdom) is process-wide and not thread-safe
  return m;
}

std::string sanitise(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
    if (ok) out += c;
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.substr(0, 64);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return sanitise(line.substr(colon + 1));
    }
  return "unknown-cpu";
}

std::string hash16(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a, 64 bit
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string sprint(fftwf_plan p) {
  char* s = fftwf_sprint_plan(p);
  std::string out = s ? s : "";
  std::free(s);
  return out;
}

/// Advisory inter-process lock on <file>.lock, held for the object's lifetime. Best effort:
/// if the lock file cannot be opened the lock is simply not held (ok() is false).
class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) {
      ::flock(fd_, LOCK_UN);
      ::close(fd_);
    }
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

enum class Load { Ok, Missing, Bad };

/// Replaces FFTW's wisdom with the file's (so that plans depend on the file alone).
Load load_wisdom(const std::string& path) {
  fftwf_forget_wisdom();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Load::Missing;
  if (fftwf_import_wisdom_from_filename(path.c_str())) return Load::Ok;
  fftwf_forget_wisdom();  // drop whatever a partial import left
  return Load::Bad;
}

/// Writes FFTW's current wisdom to `path` atomically (temporary file + rename).
bool save_wisdom(const std::string& path) {
  char* text = fftwf_export_wisdom_to_string();
  if (!text) return false;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  bool ok = false;
  if (std::FILE* f = std::fopen(tmp.c_str(), "w")) {
    const std::size_t n = std::char_traits<char>::length(text);
    ok = std::fwrite(text, 1, n, f) == n;
    ok = (std::fflush(f) == 0) && ok;
    ok = (::fsync(::fileno(f)) == 0) && ok;
    ok = (std::fclose(f) == 0) && ok;
    ok = ok && std::rename(tmp.c_str(), path.c_str()) == 0;
    if (!ok) std::remove(tmp.c_str());
  }
  std::free(text);
  return ok;
}
}  // namespace

std::string wisdom_file_path(const std::string& setting) {
  if (!setting.empty()) return setting;
  if (const char* e = std::getenv("STEMTWIN_FFTW_WISDOM"); e && *e) return e;
  const std::string name = "fftw-wisdom-" + sanitise(fftwf_version) + "-" + cpu_model();
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/stemtwin/" + name;
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/stemtwin/" + name;
  return "";
}

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

Fft2::Fft2(const Grid& grid, FftPlanning planning, const std::string& wisdom_file)
    : nx_(grid.nx), ny_(grid.ny), planning_(planning) {
  ComplexBuffer tmp(grid.size());
  auto* a = reinterpret_cast<fftwf_complex*>(tmp.data());
  const int n0 = static_cast<int>(ny_), n1 = static_cast<int>(nx_);
  std::lock_guard<std::mutex> lock(planner_mutex());
  auto plan = [&](unsigned flags) {
    fwd_ = fftwf_plan_dft_2d(n0, n1, a, a, FFTW_FORWARD, flags);
    bwd_ = fftwf_plan_dft_2d(n0, n1, a, a, FFTW_BACKWARD, flags);
  };
  auto drop = [&] {
    if (fwd_) fftwf_destroy_plan(static_cast<fftwf_plan>(fwd_));
    if (bwd_) fftwf_destroy_plan(static_cast<fftwf_plan>(bwd_));
    fwd_ = bwd_ = nullptr;
  };
  const std::string size = std::to_string(nx_) + "×" + std::to_string(ny_);
  if (planning == FftPlanning::Wisdom) {
    wisdom_file_ = wisdom_file_path(wisdom_file);
    if (wisdom_file_.empty()) {
      warnings_.push_back("FFTW wisdom: no file (set STEMTWIN_FFTW_WISDOM or HOME); the " + size +
                          " plan is measured in memory and may differ in the next run");
      plan(FFTW_MEASURE);
    } else {
      std::error_code ec;
      const auto dir = std::filesystem::path(wisdom_file_).parent_path();
      if (!dir.empty()) std::filesystem::create_directories(dir, ec);
      const FileLock file_lock(wisdom_file_ + ".lock");  // one process measures, the others wait
      const Load loaded = load_wisdom(wisdom_file_);
      if (loaded == Load::Bad)
        warnings_.push_back("FFTW wisdom file " + wisdom_file_ + " is unreadable or corrupt: ignored (and rewritten)");
      plan(FFTW_MEASURE | FFTW_WISDOM_ONLY);
      if (!fwd_ || !bwd_) {
        // First time for this size here: measure, store, then rebuild the plan from the file
        // exactly as every later run will, so the first run's bytes equal the later ones'.
        drop();
        plan(FFTW_MEASURE);
        drop();
        if (save_wisdom(wisdom_file_) && load_wisdom(wisdom_file_) == Load::Ok) {
          plan(FFTW_MEASURE | FFTW_WISDOM_ONLY);
        } else {
          warnings_.push_back("FFTW wisdom file " + wisdom_file_ + " could not be written; the " + size +
                              " plan is measured in memory and may differ in the next run");
        }
        if (!fwd_ || !bwd_) {
          drop();
          plan(FFTW_MEASURE);  // uses the in-memory wisdom just measured
        }
      }
      if (!file_lock.ok()) warnings_.push_back("FFTW wisdom: could not lock " + wisdom_file_ + ".lock");
    }
  } else {
    // FFTW serves any request from stored wisdom at least as rigorous, so without this an
    // "estimate" plan made after a Wisdom plan would silently be the measured one.
    fftwf_forget_wisdom();
    plan(planning == FftPlanning::Measure ? FFTW_MEASURE : FFTW_ESTIMATE);
  }
  if (!fwd_ || !bwd_) {
    drop();
    throw std::runtime_error("FFTW could not plan a " + size + " transform");
  }
  plan_text_ = sprint(static_cast<fftwf_plan>(fwd_)) + "\n" + sprint(static_cast<fftwf_plan>(bwd_));
  plan_id_ = hash16(plan_text_);
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

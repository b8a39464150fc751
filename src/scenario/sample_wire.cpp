#include "stemtwin/scenario/sample_wire.hpp"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace stemtwin {
namespace {

constexpr std::uint32_t kMagic = 0x53545732;  // "STW2": the format of this file (2: + fft_plan, instrument settings, spectroscopy)

class Writer {
 public:
  template <class T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  template <class T>
  void array(const std::vector<T>& v) {
    pod(std::uint64_t(v.size()));
    const auto* p = reinterpret_cast<const std::byte*>(v.data());
    out_.insert(out_.end(), p, p + v.size() * sizeof(T));
  }
  void text(const std::string& s) {
    pod(std::uint64_t(s.size()));
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out_.insert(out_.end(), p, p + s.size());
  }
  void image(const Image& im) {
    pod(std::uint64_t(im.nx));
    pod(std::uint64_t(im.ny));
    array(im.data);
  }
  template <class V, class F>
  void map(const std::map<std::string, V>& m, F each) {
    pod(std::uint64_t(m.size()));
    for (const auto& [k, v] : m) {
      text(k);
      each(v);
    }
  }
  std::vector<std::byte> take() { return std::move(out_); }

 private:
  std::vector<std::byte> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  template <class T>
  T pod() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  std::size_t count(std::size_t element) {
    const auto n = pod<std::uint64_t>();
    if (element && n > (in_.size() - at_) / element) fail();
    return std::size_t(n);
  }
  template <class T>
  std::vector<T> array() {
    std::vector<T> v(count(sizeof(T)));
    if (!v.empty()) std::memcpy(v.data(), take(v.size() * sizeof(T)), v.size() * sizeof(T));
    return v;
  }
  std::string text() {
    const std::size_t n = count(1);
    const auto* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  Image image() {
    Image im;
    im.nx = std::size_t(pod<std::uint64_t>());
    im.ny = std::size_t(pod<std::uint64_t>());
    im.data = array<double>();
    if (im.data.size() != im.nx * im.ny) fail();
    return im;
  }
  template <class V, class F>
  std::map<std::string, V> map(F each) {
    std::map<std::string, V> m;
    for (std::size_t i = count(1), k = 0; k < i; ++k) {
      std::string key = text();
      m.emplace(std::move(key), each());
    }
    return m;
  }
  bool done() const { return at_ == in_.size(); }
  [[noreturn]] static void fail() { throw std::runtime_error("decode_sample: truncated or malformed sample bytes"); }

 private:
  const std::byte* take(std::size_t n) {
    if (n > in_.size() - at_) fail();
    const std::byte* p = in_.data() + at_;
    at_ += n;
    return p;
  }
  std::span<const std::byte> in_;
  std::size_t at_ = 0;
};

}  // namespace

std::vector<std::byte> encode_sample(const ComputedSample& s) {
  const SampleRecord& r = s.record;
  Writer w;
  w.pod(kMagic);
  w.pod(std::uint64_t(r.index));
  w.pod(std::int32_t(r.class_id));
  const auto image = [&](const Image& im) { w.image(im); };
  const auto floats = [&](const std::vector<float>& v) { w.array(v); };
  w.map(r.images, image);
  w.map(r.clean, image);
  w.map(r.masks, image);
  w.map(r.radial, floats);
  w.map(r.params, [&](double v) { w.pod(v); });
  w.text(r.fft_plan);  // the writer lists it in the root attribute `fft_plan`, as a serial run does
  w.pod(std::uint64_t(r.columns.size()));
  for (const ColumnLabel& c : r.columns) {
    w.pod(c.x), w.pod(c.y), w.pod(c.px), w.pod(c.py);
    w.pod(std::int32_t(c.species)), w.pod(std::int32_t(c.count)), w.pod(std::int32_t(c.class_id));
    w.array(c.composition);
  }
  w.map(s.patterns, floats);
  // Spectroscopy (EDS/EELS detectors): spectra, maps and composition labels, as a serial run writes them.
  w.map(r.spectra, floats);
  w.map(r.clean_spectra, floats);
  w.map(r.maps, image);
  w.map(r.clean_maps, image);
  w.array(r.region_composition);
  w.pod(std::uint8_t(r.instrument.has_value()));
  if (r.instrument) {
    const InstrumentSettings& in = *r.instrument;
    for (double v : {in.energy_eV, in.convergence_mrad, in.current_pA, in.dwell_us, in.step_x_A, in.step_y_A}) w.pod(v);
    w.pod(std::uint64_t(in.detectors.size()));
    for (const DetectorSettings& d : in.detectors) {
      w.text(d.name), w.text(d.type);
      w.pod(d.inner_mrad), w.pod(d.outer_mrad), w.pod(d.max_angle_mrad);
    }
  }
  return w.take();
}

ComputedSample decode_sample(std::span<const std::byte> bytes) {
  Reader in(bytes);
  if (in.pod<std::uint32_t>() != kMagic) Reader::fail();
  ComputedSample s;
  SampleRecord& r = s.record;
  r.index = std::size_t(in.pod<std::uint64_t>());
  r.class_id = in.pod<std::int32_t>();
  const auto image = [&] { return in.image(); };
  const auto floats = [&] { return in.array<float>(); };
  r.images = in.map<Image>(image);
  r.clean = in.map<Image>(image);
  r.masks = in.map<Image>(image);
  r.radial = in.map<std::vector<float>>(floats);
  r.params = in.map<double>([&] { return in.pod<double>(); });
  r.fft_plan = in.text();
  r.columns.resize(in.count(4 * sizeof(double) + 3 * sizeof(std::int32_t) + sizeof(std::uint64_t)));
  for (ColumnLabel& c : r.columns) {
    c.x = in.pod<double>(), c.y = in.pod<double>(), c.px = in.pod<double>(), c.py = in.pod<double>();
    c.species = in.pod<std::int32_t>(), c.count = in.pod<std::int32_t>(), c.class_id = in.pod<std::int32_t>();
    c.composition = in.array<float>();
  }
  s.patterns = in.map<std::vector<float>>(floats);
  r.spectra = in.map<std::vector<float>>(floats);
  r.clean_spectra = in.map<std::vector<float>>(floats);
  r.maps = in.map<Image>(image);
  r.clean_maps = in.map<Image>(image);
  r.region_composition = in.array<float>();
  if (in.pod<std::uint8_t>()) {
    InstrumentSettings& is = r.instrument.emplace();
    for (double* v : {&is.energy_eV, &is.convergence_mrad, &is.current_pA, &is.dwell_us, &is.step_x_A, &is.step_y_A})
      *v = in.pod<double>();
    is.detectors.resize(in.count(2 * sizeof(std::uint64_t) + 3 * sizeof(double)));
    for (DetectorSettings& d : is.detectors) {
      d.name = in.text(), d.type = in.text();
      d.inner_mrad = in.pod<double>(), d.outer_mrad = in.pod<double>(), d.max_angle_mrad = in.pod<double>();
    }
  }
  if (!in.done()) Reader::fail();
  return s;
}

}  // namespace stemtwin

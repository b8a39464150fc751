#include "stemtwin/dataset/instrument.hpp"

#include <stdexcept>

namespace stemtwin {
namespace {

// The microscope's columns, in their order (values: instrument_values).
constexpr const char* kMicroscopeColumns[] = {"energy_eV", "convergence_mrad", "current_pA",
                                              "dwell_us",  "step_x_A",         "step_y_A"};

std::vector<double*> microscope_fields(InstrumentSettings& s) {
  return {&s.energy_eV, &s.convergence_mrad, &s.current_pA, &s.dwell_us, &s.step_x_A, &s.step_y_A};
}

/// The field behind one of detector_columns().
double& detector_field(DetectorSettings& d, const std::string& column) {
  if (column == "inner_mrad") return d.inner_mrad;
  if (column == "outer_mrad") return d.outer_mrad;
  return d.max_angle_mrad;
}

}  // namespace

std::vector<std::string> detector_columns(const std::string& type) {
  if (type == "annular") return {"inner_mrad", "outer_mrad"};
  if (type == "pixelated") return {"max_angle_mrad"};
  return {};
}

std::vector<std::pair<std::string, double>> detector_values(const DetectorSettings& d) {
  DetectorSettings copy = d;
  std::vector<std::pair<std::string, double>> v;
  for (const std::string& col : detector_columns(d.type)) v.emplace_back(col, detector_field(copy, col));
  return v;
}

std::vector<std::string> instrument_columns(const InstrumentLayout& l) {
  if (!l.stored) return {};
  std::vector<std::string> c(std::begin(kMicroscopeColumns), std::end(kMicroscopeColumns));
  for (const InstrumentDetector& d : l.detectors)
    for (const std::string& col : detector_columns(d.type)) c.push_back("detectors/" + d.name + "/" + col);
  return c;
}

std::vector<double> instrument_values(const InstrumentLayout& l, const InstrumentSettings& s) {
  if (!l.stored) return {};
  if (s.detectors.size() != l.detectors.size())
    throw std::invalid_argument("instrument settings: " + std::to_string(s.detectors.size()) + " detectors, the layout has " +
                                std::to_string(l.detectors.size()));
  InstrumentSettings copy = s;
  std::vector<double> v;
  for (const double* x : microscope_fields(copy)) v.push_back(*x);
  for (std::size_t i = 0; i < l.detectors.size(); ++i) {
    const DetectorSettings& d = s.detectors[i];
    if (d.name != l.detectors[i].name || d.type != l.detectors[i].type)
      throw std::invalid_argument("instrument settings: detector " + std::to_string(i) + " is '" + d.name + "' (" + d.type +
                                  "), the layout has '" + l.detectors[i].name + "' (" + l.detectors[i].type + ")");
    for (const auto& cv : detector_values(d)) v.push_back(cv.second);
  }
  return v;
}

InstrumentSettings instrument_from_values(const InstrumentLayout& l, const std::vector<double>& v) {
  if (v.size() != instrument_columns(l).size())
    throw std::invalid_argument("instrument values: " + std::to_string(v.size()) + " values for " +
                                std::to_string(instrument_columns(l).size()) + " columns");
  InstrumentSettings s;
  if (!l.stored) return s;
  std::size_t k = 0;
  for (double* x : microscope_fields(s)) *x = v[k++];
  for (const InstrumentDetector& d : l.detectors) {
    DetectorSettings o{d.name, d.type};
    for (const std::string& col : detector_columns(d.type)) detector_field(o, col) = v[k++];
    s.detectors.push_back(o);
  }
  return s;
}

}  // namespace stemtwin

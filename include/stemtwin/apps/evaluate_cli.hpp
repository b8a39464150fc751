#pragma once
// Entry points of `stemtwin evaluate` and `stemtwin baseline`, taking plain arguments so the
// CLI11 front end only has to forward them. Both return the process exit code (0 success,
// 1 failure with the reason written to `err`), and print a short summary to `out`.
#include <cstddef>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace stemtwin {

/// `stemtwin evaluate DATASET PREDICTIONS -o OUT_DIR [--tolerance T] [--tolerance-unit A|px]
///  [--bins N] [--edges PARAM=E0,E1,...]... [--param NAME]...`
/// `edges` entries are "param=e0,e1,..." (at least two increasing numbers).
int cmd_evaluate(const std::string& dataset, const std::string& predictions, const std::string& out_dir,
                 double tolerance, const std::string& tolerance_unit, std::size_t bins,
                 const std::vector<std::string>& edges, const std::vector<std::string>& params, std::ostream& out,
                 std::ostream& err = std::cerr);

/// `stemtwin baseline DATASET -o PREDICTIONS.h5 [--detector NAME] [--sigma PX] [--threshold F]
///  [--min-distance PX] [--clean]`
int cmd_baseline(const std::string& dataset, const std::string& out_path, const std::string& detector,
                 double sigma_px, double threshold, int min_distance_px, bool use_clean, std::ostream& out,
                 std::ostream& err = std::cerr);

/// Parses "param=e0,e1,..." into (param, edges); throws std::invalid_argument with the text.
std::pair<std::string, std::vector<double>> parse_edges_spec(const std::string& spec);

}  // namespace stemtwin

#pragma once
// The command-line verbs that need no physics, as plain functions for src/cli/main.cpp to
// wire into CLI11. Each prints results to `out`, errors to `err` (one message naming the
// file), and returns the process exit code: 0 success, 1 failure.
//
//   stemtwin info dataset.h5                 → cmd_info
//   stemtwin preview dataset.h5 -o p.png [-n 8] [--clean] → cmd_preview
//   stemtwin validate scenario.yaml          → cmd_validate
//   stemtwin merge a.h5 b.h5 -o out.h5 [--force] → cmd_merge
#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

namespace stemtwin {

/// Summary of a dataset: provenance, shard, complete/total samples, shapes of every group,
/// min/mean/max of each parameter, class counts, column-label counts.
int cmd_info(const std::string& dataset, std::ostream& out, std::ostream& err);

/// Contact sheet PNG of the first `samples` samples (rows = image channels).
int cmd_preview(const std::string& dataset, const std::string& png, std::size_t samples, bool clean, std::ostream& out,
                std::ostream& err);

/// Parses and validates a scenario (file:line: key: message on error); prints what it
/// would compute: total samples (sweep grid × samples), image size, detectors and the
/// sampled parameters with their distributions.
int cmd_validate(const std::string& scenario, std::ostream& out, std::ostream& err);

/// Merges shard files into one in global sample order; warns when samples are missing.
int cmd_merge(const std::vector<std::string>& inputs, const std::string& output, bool force, std::ostream& out,
              std::ostream& err);

}  // namespace stemtwin

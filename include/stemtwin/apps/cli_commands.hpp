#pragma once
// The command-line verbs that need no physics, as plain functions for src/apps/main.cpp to
// wire into CLI11. Each prints results to `out`, errors to `err` (one message naming the
// file), and returns the process exit code: 0 success, 1 failure.
//
//   stemtwin info dataset.h5                 → cmd_info
//   stemtwin preview dataset.h5 -o p.png [-n 8] [--clean] → cmd_preview
//   stemtwin validate scenario.yaml          → cmd_validate
//   stemtwin merge a.h5 b.h5 -o out.h5 [--force] → cmd_merge
//   stemtwin export dataset.h5 --to hspy|emd|nsid|zarr -o out [--channel c]... → cmd_export
//   stemtwin show dataset.h5 --sample N -o sample.png → cmd_show
#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

#include "stemtwin/dataset/export.hpp"
#include "stemtwin/dataset/preview.hpp"

namespace stemtwin {

/// Summary of a dataset: provenance, shard, complete/total samples, shapes of every group,
/// min/mean/max of each parameter, class counts, column-label counts (with the species that
/// occur), and the calibrated axes of every array.
int cmd_info(const std::string& dataset, std::ostream& out, std::ostream& err);

/// Contact sheet PNG of the first `samples` samples (rows = image channels).
int cmd_preview(const std::string& dataset, const std::string& png, std::size_t samples, bool clean, std::ostream& out,
                std::ostream& err);

/// The same with every picture option (--markers, --tile).
int cmd_preview(const std::string& dataset, const std::string& png, const PreviewOptions& options, std::ostream& out,
                std::ostream& err);

/// One sample (row `row` of the file) with all its pictures, labels and parameters as one PNG.
int cmd_show(const std::string& dataset, std::size_t row, const std::string& png, const PreviewOptions& options,
             std::ostream& out, std::ostream& err);

/// Exports a dataset for HyperSpy, py4DSTEM, pycroscopy or zarr readers (export.hpp).
int cmd_export(const std::string& dataset, const std::string& output, const ExportOptions& options, std::ostream& out,
               std::ostream& err);

/// Parses and validates a scenario (file:line: key: message on error); prints what it
/// would compute: total samples (sweep grid × samples), image size, detectors and the
/// sampled parameters with their distributions.
int cmd_validate(const std::string& scenario, std::ostream& out, std::ostream& err);

/// Merges shard files into one in global sample order; warns when samples are missing.
int cmd_merge(const std::vector<std::string>& inputs, const std::string& output, bool force, std::ostream& out,
              std::ostream& err);

}  // namespace stemtwin

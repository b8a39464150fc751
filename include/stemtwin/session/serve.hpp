#pragma once
// `stemtwin serve`: a Microscope session behind the JSON-RPC socket server, speaking the
// DTMicroscope TEM client's protocol (docs/server.md). The CLI front end (src/apps/main.cpp)
// only forwards its options here.
//
//   stemtwin serve [--port 9093] [--host 127.0.0.1] [--structure FILE | --scenario YAML | --specimen world|crystal] [--sampling 0.05]
//                  [--method windowed|auto|multislice|prism] [--error-budget 0.01,0.995] [--prism-interpolation 4] [--seed 0]
//                  [--max-pixels 65536] [--max-connections 16] [--timeout 5]
#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "stemtwin/session/microscope_service.hpp"
#include "stemtwin/specimen/specimen.hpp"
#include "stemtwin/specimen/world.hpp"

namespace stemtwin {

struct ServeOptions {
  std::string host = "127.0.0.1";  ///< loopback only unless told otherwise
  int port = 9093;                 ///< the DTMicroscope TEM client's default port; 0 = any free port
  /// Structure file (CIF, XYZ, POSCAR…: read_structure) to put in the microscope; empty:
  /// the `specimen` below unless a scenario is given.
  std::string structure;
  /// Without a structure file or scenario: "world" (default) — a World (world.hpp) of
  /// `world` parameters from `seed`, micrometres wide; "crystal" — default_serve_specimen(seed),
  /// the small periodic SrTiO3 cell of earlier versions.
  std::string specimen = "world";
  WorldParams world;
  /// Scenario YAML (docs/scenario.md): sample 0 gives the specimen, optics, current,
  /// sampling, slicing, method, phonons, read-out chain (noise, distortions), the annular
  /// detectors and the scan; those values replace sampling_A/method below. Not with `structure`.
  std::string scenario;
  double sampling_A = 0.05;        ///< simulation grid sampling (MicroscopeSettings::sampling_A)
  /// "windowed" (default: each tile of probe positions on a window of its own, windowed.hpp;
  /// HAADF within 1 % of multislice and ×1.8–3.5 faster per session frame, measured by
  /// bench/bench_session_methods.py), "auto" (PRISM where it holds the error budget on the
  /// frame's calibration positions, else multislice; MicroscopeSettings::method, the library's
  /// default), "multislice" or "prism".
  std::string method = "windowed";
  /// Method auto's budget "MEAN[,CORRELATION]" (annular means within MEAN, correlation ≥
  /// CORRELATION); "" = ErrorBudget's defaults (0.01, 0.995). A scenario's error_budget wins.
  std::string error_budget;
  std::size_t prism_interpolation = 4;
  std::uint64_t seed = 0;          ///< session seed (noise, phonons, default specimen)
  /// False (default): the column has the seeded residual aberrations of a tuned corrector
  /// (MicroscopeSettings::residual_aberrations; measure and correct them with acquireTableau,
  /// measureC1A1, correctAberration). True: an ideal column.
  bool ideal_column = false;
  std::size_t max_connections = 16;
  std::size_t max_request_bytes = 1 << 20;
  double read_timeout_s = 5;        ///< RpcServerOptions::read_timeout_s (why 5 s: there)
  ServiceLimits limits;
  /// Called once the socket listens, with the bound port (tests use port 0 and this).
  std::function<void(int port)> on_listening;
};

/// The default specimen: SrTiO3 viewed along [001], 12 × 12 × 2 unit cells (46.9 × 46.9 ×
/// 7.8 Å), the quarter x < 11.7 Å amorphised (random packing, planar front), 4 % of the Sr
/// replaced by La (bright columns in HAADF) and 3 % of the O removed. Seeded; see
/// builders.hpp for each step.
Specimen default_serve_specimen(std::uint64_t seed);

/// Builds the specimen and the session, listens, and serves until SIGINT/SIGTERM. Returns
/// 0 after a clean shutdown, 1 when the specimen cannot be built or the port cannot be
/// bound (the reason is written to `log`). Progress and one line per request go to `log`.
int cmd_serve(const ServeOptions& options, std::ostream& log);

}  // namespace stemtwin

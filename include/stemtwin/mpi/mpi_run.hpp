#pragma once
// `mpirun -n R stemtwin run …`: the samples of a run spread over R processes (docs/cluster.md).
//
// Rank 0 owns the work queue and the one output file, written by the same crash-safe,
// append-in-order DatasetWriter as a serial run. Every rank (rank 0 too, on a second thread)
// asks rank 0 for the next sample index, computes it with compute_sample (physics and
// acquisition, 4D rows collected in memory) and returns the finished sample as bytes
// (sample_wire.hpp); rank 0 appends samples in index order, holding early arrivals (at most
// `window` samples ahead of the next one to write). So the file holds the same bytes in every
// dataset as a serial run with the same seed, by construction, and --resume is the serial
// resume. A sample that throws is reported with its index, rank and reason; rank 0 stops
// handing out work, writes every sample before the failed one, and every rank stops cleanly.
//
// Compiled only when CMake finds MPI (option STEMTWIN_MPI).
#include <mpi.h>

#include <cstddef>
#include <ostream>

#include "stemtwin/scenario/runner.hpp"

namespace stemtwin {

/// Ranks the launcher (mpirun, srun) started this process with, read from its environment;
/// 1 when not started by one. Does not initialise MPI.
int launched_world_size();

/// MPI for the lifetime of the object: MPI_Init_thread (funneled: only the constructing
/// thread calls MPI) and a private communicator; MPI_Finalize in the destructor.
class MpiSession {
 public:
  MpiSession(int& argc, char**& argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// A private duplicate of MPI_COMM_WORLD (the run's messages meet no one else's).
  MPI_Comm comm() const { return comm_; }

 private:
  int rank_ = 0, size_ = 1;
  MPI_Comm comm_ = MPI_COMM_NULL;
};

struct MpiRunOptions {
  bool rank0_computes = true;  ///< rank 0 computes samples too (on a second thread) besides writing
  std::size_t window = 0;      ///< samples computed ahead of the next one written (0: 4 × ranks)
};

/// run_scenario over the ranks of `mpi` (every rank calls it with the same arguments; only
/// rank 0 touches the file and `log`). Rank 0 returns the run's result and prints one line
/// "mpi: …" with the busy time per rank, the load-balance efficiency and the queue's
/// overhead per sample. Throws on every rank when the run fails (rank 0: which sample,
/// on which rank, and why).
RunResult run_scenario_mpi(const MpiSession& mpi, const ScenarioSpec& spec, const RunOptions& options,
                           const CompleteLayout& complete_layout, const SimulateSample& simulate, std::ostream& log,
                           const MpiRunOptions& mpi_options = {});

}  // namespace stemtwin

#include "stemtwin/mpi/mpi_run.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "stemtwin/scenario/sample_wire.hpp"

namespace stemtwin {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Messages between rank 0 (queue and file) and the workers.
enum Tag : int {
  kStart = 1,   // 0 → w: the file's layout (JSON); the run begins
  kAbort = 2,   // 0 → w: rank 0 failed before the run began
  kWork = 3,    // 0 → w: compute this sample index (uint64)
  kStop = 4,    // 0 → w: no more work
  kReady = 5,   // w → 0: first request for work
  kResult = 6,  // w → 0: Timing + encoded sample (also a request for more work)
  kFailed = 7,  // w → 0: uint64 sample index + the reason (also a request)
};

/// Samples shorter than this (mean so far) are handed out two at a time (see coordinate).
constexpr double kPrefetchBelow_s = 0.1;

/// What a worker measured for the sample it returns.
struct Timing {
  double compute_s = 0;  ///< computing the sample
  double wait_s = 0;     ///< between asking for it and receiving its index (the queue's overhead)
};

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, text, &n);
    throw std::runtime_error(std::string("MPI: ") + what + ": " + std::string(text, std::size_t(n)));
  }
}

void send(MPI_Comm comm, int to, Tag tag, const void* data, std::size_t bytes) {
  if (bytes > std::size_t(INT_MAX))
    throw std::runtime_error("a sample of " + std::to_string(bytes >> 20) + " MiB exceeds one MPI message (2 GiB)");
  check(MPI_Send(data, int(bytes), MPI_BYTE, to, tag, comm), "MPI_Send");
}
void send(MPI_Comm comm, int to, Tag tag) { send(comm, to, tag, nullptr, 0); }

struct Message {
  int source = 0;
  int tag = 0;
  std::vector<std::byte> bytes;
};

/// A waiting message, if any (never blocks).
std::optional<Message> poll(MPI_Comm comm, int source) {
  int flag = 0;
  MPI_Status st;
  check(MPI_Iprobe(source, MPI_ANY_TAG, comm, &flag, &st), "MPI_Iprobe");
  if (!flag) return std::nullopt;
  int n = 0;
  check(MPI_Get_count(&st, MPI_BYTE, &n), "MPI_Get_count");
  Message m{st.MPI_SOURCE, st.MPI_TAG, std::vector<std::byte>(std::size_t(n))};
  check(MPI_Recv(m.bytes.data(), n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, comm, MPI_STATUS_IGNORE), "MPI_Recv");
  return m;
}

/// Waits for a message by polling with short sleeps: a blocking receive in Open MPI spins a
/// core, which on oversubscribed nodes would take it from the ranks that compute.
Message wait(MPI_Comm comm, int source) {
  auto pause = std::chrono::microseconds(20);
  for (;;) {
    if (auto m = poll(comm, source)) return std::move(*m);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(500));
  }
}

std::uint64_t read_u64(const std::vector<std::byte>& b) {
  if (b.size() < sizeof(std::uint64_t)) throw std::runtime_error("MPI: short message");
  std::uint64_t v;
  std::memcpy(&v, b.data(), sizeof v);
  return v;
}

// ---------------------------------------------------------------------------------------
// Worker ranks.

RunResult run_worker(const MpiSession& mpi, const ScenarioSpec& spec, const SimulateSample& simulate) {
  const MPI_Comm comm = mpi.comm();
  const std::string me = "rank " + std::to_string(mpi.rank());
  const Message first = wait(comm, 0);
  if (first.tag != kStart) throw std::runtime_error(me + " stopped: rank 0 failed before the run began (see its message)");
  const DatasetLayout layout =
      DatasetLayout::from_json(std::string(reinterpret_cast<const char*>(first.bytes.data()), first.bytes.size()));
  RunResult res;
  std::optional<std::string> failure;
  auto asked = Clock::now();
  send(comm, 0, kReady);
  for (;;) {
    const Message m = wait(comm, 0);
    if (m.tag == kStop) break;
    if (m.tag != kWork) throw std::logic_error(me + ": unexpected message " + std::to_string(m.tag));
    const std::size_t index = std::size_t(read_u64(m.bytes));
    Timing t;
    t.wait_s = seconds_since(asked);
    const auto t0 = Clock::now();
    std::vector<std::byte> out;
    Tag tag = kResult;
    try {
      ComputedSample c;
      c.record = compute_sample(spec, layout, index, simulate, collect_rows(layout, c.patterns));
      t.compute_s = seconds_since(t0);
      const std::vector<std::byte> body = encode_sample(c);
      out.resize(sizeof t);
      std::memcpy(out.data(), &t, sizeof t);
      out.insert(out.end(), body.begin(), body.end());
    } catch (const std::exception& e) {
      // Reported by rank 0 too; said here as well, where it happened.
      failure = "sample " + std::to_string(index) + " failed on " + me + ": " + e.what();
      const std::uint64_t i = index;
      const std::string why = e.what();
      out.resize(sizeof i);
      std::memcpy(out.data(), &i, sizeof i);
      const auto* w = reinterpret_cast<const std::byte*>(why.data());
      out.insert(out.end(), w, w + why.size());
      tag = kFailed;
    }
    asked = Clock::now();
    send(comm, 0, tag, out.data(), out.size());
    if (tag == kResult) ++res.written;
  }
  if (failure) throw std::runtime_error(*failure);
  return res;
}

// ---------------------------------------------------------------------------------------
// Rank 0: the queue, the writer, and (optionally) a local worker thread.

/// Rank 0's own worker: computes one sample at a time on a second thread, so the main
/// thread stays free to answer the other ranks and write (only the main thread calls MPI
/// and HDF5).
class LocalWorker {
 public:
  LocalWorker(const ScenarioSpec& spec, const DatasetLayout& layout, const SimulateSample& simulate)
      : spec_(spec), layout_(layout), simulate_(simulate), threads_(omp_get_max_threads()), thread_([this] { loop(); }) {}
  ~LocalWorker() {
    {
      const std::lock_guard lock(m_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  LocalWorker(const LocalWorker&) = delete;
  LocalWorker& operator=(const LocalWorker&) = delete;

  void give(std::size_t index) {
    {
      const std::lock_guard lock(m_);
      job_ = index;
      asked_wait_s_ = seconds_since(idle_since_);
    }
    cv_.notify_all();
  }
  struct Done {
    std::size_t index = 0;
    std::optional<ComputedSample> sample;  ///< empty when it failed
    std::string error;
    Timing timing;
  };
  std::optional<Done> take() {
    const std::lock_guard lock(m_);
    std::optional<Done> d = std::move(done_);
    done_.reset();
    if (d) idle_since_ = Clock::now();
    return d;
  }

 private:
  void loop() {
    omp_set_num_threads(threads_);  // a new thread starts with the default; keep --threads
    for (;;) {
      std::size_t index = 0;
      Timing t;
      {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return quit_ || job_; });
        if (quit_) return;
        index = *job_;
        t.wait_s = asked_wait_s_;
      }
      Done d;
      d.index = index;
      const auto t0 = Clock::now();
      try {
        ComputedSample c;
        c.record = compute_sample(spec_, layout_, index, simulate_, collect_rows(layout_, c.patterns));
        d.sample = std::move(c);
      } catch (const std::exception& e) {
        d.error = e.what();
      }
      t.compute_s = seconds_since(t0);
      d.timing = t;
      const std::lock_guard lock(m_);
      job_.reset();
      done_ = std::move(d);
    }
  }
  const ScenarioSpec& spec_;
  const DatasetLayout& layout_;
  const SimulateSample& simulate_;
  const int threads_;
  std::mutex m_;
  std::condition_variable cv_;
  std::optional<std::size_t> job_;
  std::optional<Done> done_;
  bool quit_ = false;
  Clock::time_point idle_since_ = Clock::now();
  double asked_wait_s_ = 0;
  std::thread thread_;  // last: starts once everything above exists
};

struct Stats {
  std::vector<double> busy_s;  ///< per rank
  double wait_s = 0;           ///< summed over samples
  double write_s = 0;          ///< rank 0 appending samples (receiving excluded)
  std::size_t samples = 0;
  double wall_s = 0;
  bool stopped_cleanly = false;  ///< every worker got kStop (false: an error left some waiting)
};

struct Failure {
  std::size_t index = 0;
  int rank = 0;
  std::string reason;
};

void coordinate(const MpiSession& mpi, const MpiRunOptions& mo, const ScenarioSpec& spec,
                const SimulateSample& simulate, std::span<const std::size_t> pending, DatasetWriter& writer,
                const std::function<bool()>& appended, Stats& stats) {
  const MPI_Comm comm = mpi.comm();
  const int R = mpi.size();
  const auto t_start = Clock::now();
  stats.busy_s.assign(std::size_t(R), 0.0);
  const std::string layout = writer.layout().to_json();
  for (int r = 1; r < R; ++r) send(comm, r, kStart, layout.data(), layout.size());

  const std::size_t n = pending.size();
  const std::size_t window = mo.window ? mo.window : 4 * std::size_t(R);
  std::size_t next_dispatch = 0, next_write = 0;
  std::map<std::size_t, ComputedSample> early;  // by sample index, waiting for their turn
  // A worker holds one index at a time, so the samples balance exactly. Only when samples
  // are short (the mean so far below kPrefetchBelow_s, where a round trip to rank 0 would
  // be a noticeable share) does it hold a second one in its inbox, and not at the tail
  // (fewer samples left than ranks), where a held index would keep another rank idle.
  struct Worker {
    bool started = false, stopped = false;
    int outstanding = 0;
  };
  std::vector<Worker> state(static_cast<std::size_t>(R));
  state[0].stopped = true;  // rank 0's work goes through `local`
  std::optional<Failure> failure;
  std::exception_ptr fatal;  // rank 0's own error (writing): stop everyone, then rethrow
  bool stop = false;         // Ctrl-C
  std::optional<LocalWorker> local;
  if (mo.rank0_computes && n > 0) local.emplace(spec, writer.layout(), simulate);
  bool local_busy = false;
  double busy_sum = 0;  // compute time of the samples returned so far

  const auto no_more_work = [&] { return failure || fatal || stop || next_dispatch == n; };
  const auto can_dispatch = [&] { return !no_more_work() && next_dispatch < next_write + window; };
  const auto fail = [&](std::size_t index, int rank, std::string reason) {
    if (!failure || index < failure->index) failure = Failure{index, rank, std::move(reason)};
  };
  const auto arrived = [&](int rank, ComputedSample c, const Timing& t) {
    stats.busy_s[std::size_t(rank)] += t.compute_s;
    busy_sum += t.compute_s;
    stats.wait_s += t.wait_s;
    ++stats.samples;
    const std::size_t index = c.record.index;
    early.emplace(index, std::move(c));
  };

  for (;;) {
    bool progressed = false;
    while (auto m = poll(comm, MPI_ANY_SOURCE)) {
      progressed = true;
      Worker& s = state[std::size_t(m->source)];
      if (m->tag == kReady) {
        s.started = true;
      } else if (m->tag == kResult) {
        --s.outstanding;
        if (m->bytes.size() < sizeof(Timing)) throw std::runtime_error("MPI: short result message");
        Timing t;
        std::memcpy(&t, m->bytes.data(), sizeof t);
        arrived(m->source, decode_sample(std::span(m->bytes).subspan(sizeof t)), t);
      } else if (m->tag == kFailed) {
        --s.outstanding;
        const std::size_t index = std::size_t(read_u64(m->bytes));
        fail(index, m->source,
             std::string(reinterpret_cast<const char*>(m->bytes.data()) + sizeof(std::uint64_t),
                         m->bytes.size() - sizeof(std::uint64_t)));
      } else {
        throw std::logic_error("MPI: unexpected message " + std::to_string(m->tag) + " on rank 0");
      }
    }
    if (local && local_busy)
      if (auto d = local->take()) {
        progressed = true;
        local_busy = false;
        if (d->sample) arrived(0, std::move(*d->sample), d->timing);
        else fail(d->index, 0, d->error);
      }
    // Hand out work first (writing takes milliseconds a waiting rank would lose), or stop
    // the ranks there is none for.
    for (int r = 1; r < R; ++r) {
      Worker& s = state[std::size_t(r)];
      if (!s.started || s.stopped) continue;
      const bool prefetch = stats.samples > 0 && busy_sum / double(stats.samples) < kPrefetchBelow_s;
      while (can_dispatch() &&
             (s.outstanding == 0 || (prefetch && s.outstanding < 2 && n - next_dispatch > std::size_t(R)))) {
        const std::uint64_t index = pending[next_dispatch++];
        send(comm, r, kWork, &index, sizeof index);
        ++s.outstanding;
        progressed = true;
      }
      if (s.outstanding == 0 && no_more_work()) {
        send(comm, r, kStop);
        s.stopped = true;
        progressed = true;
      }
    }
    if (local && !local_busy && can_dispatch()) {
      local->give(pending[next_dispatch++]);
      local_busy = true;
      progressed = true;
    }
    // Write whatever is next in index order.
    while (!fatal && next_write < n) {
      const auto it = early.find(pending[next_write]);
      if (it == early.end()) break;
      try {
        const auto t0 = Clock::now();
        append_collected(writer, it->second.record, it->second.patterns);
        stats.write_s += seconds_since(t0);
        if (appended()) stop = true;
      } catch (...) {
        fatal = std::current_exception();
      }
      early.erase(it);
      ++next_write;
      progressed = true;
    }
    const bool ranks_done = std::all_of(state.begin(), state.end(), [](const Worker& w) { return w.stopped; });
    if (ranks_done && !local_busy && no_more_work()) break;
    if (!progressed) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  local.reset();
  stats.wall_s = seconds_since(t_start);
  stats.stopped_cleanly = true;
  if (fatal) std::rethrow_exception(fatal);
  if (failure)
    throw std::runtime_error("sample " + std::to_string(failure->index) + " failed on rank " +
                             std::to_string(failure->rank) + ": " + failure->reason + " (the " +
                             std::to_string(writer.rows()) + " complete samples before it are in '" + writer.path() +
                             "'; fix the input and continue with --resume)");
}

void report(const Stats& s, const MpiRunOptions& mo, std::ostream& log) {
  const int R = int(s.busy_s.size());
  double busy = 0;
  for (double b : s.busy_s) busy += b;
  // Efficiency: the share of the ranks' time spent computing samples (1 = perfect balance,
  // no queue overhead). Rank 0 counts only when it computes.
  const int computing = mo.rank0_computes ? R : R - 1;
  const double eff = s.wall_s > 0 && computing > 0 ? busy / (double(computing) * s.wall_s) : 0;
  log << "mpi: " << R << " ranks (rank 0 " << (mo.rank0_computes ? "computes and writes" : "writes") << "), "
      << s.samples << " samples in " << std::fixed << std::setprecision(3) << s.wall_s << " s; busy per rank [s]:";
  for (double b : s.busy_s) log << " " << b;
  const double per = s.samples ? 1e3 / double(s.samples) : 0.0;
  log << "; load-balance efficiency " << eff << "; queue overhead " << s.wait_s * per << " ms per sample; writing "
      << s.write_s * per << " ms per sample, computing " << busy * per << " ms per sample\n"
      << std::defaultfloat;
}

}  // namespace

int launched_world_size() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"})
    if (const char* s = std::getenv(v)) return std::max(1, std::atoi(s));
  return 1;
}

MpiSession::MpiSession(int& argc, char**& argv) {
  int provided = 0;
  check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    throw std::runtime_error("MPI: this MPI library does not allow threads (MPI_THREAD_FUNNELED)");
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiSession::~MpiSession() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  MPI_Finalize();
}

RunResult run_scenario_mpi(const MpiSession& mpi, const ScenarioSpec& spec, const RunOptions& options,
                           const CompleteLayout& complete_layout, const SimulateSample& simulate, std::ostream& log,
                           const MpiRunOptions& mo) {
  if (mpi.size() == 1) return run_scenario(spec, options, complete_layout, simulate, log);
  if (mpi.rank() != 0) return run_worker(mpi, spec, simulate);
  bool started = false;
  Stats stats;
  try {
    RunResult r = run_scenario(spec, options, complete_layout, simulate, log,
                               [&](std::span<const std::size_t> pending, DatasetWriter& writer,
                                   const std::function<bool()>& appended) {
                                 started = true;
                                 coordinate(mpi, mo, spec, simulate, pending, writer, appended, stats);
                               });
    report(stats, mo, log);
    return r;
  } catch (const std::exception& e) {
    if (!started) {
      for (int r = 1; r < mpi.size(); ++r) send(mpi.comm(), r, kAbort);
    } else if (!stats.stopped_cleanly) {
      // The queue itself failed mid-run (not a sample): ranks may wait for it forever. The
      // file keeps its complete samples; end the job.
      log.flush();
      std::cerr << "stemtwin run: " << e.what() << " (aborting the MPI job)\n";
      MPI_Abort(mpi.comm(), 1);
    }
    throw;
  }
}

}  // namespace stemtwin

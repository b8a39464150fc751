#include "stemtwin/session/rpc_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <list>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "stemtwin/session/netstring.hpp"

namespace stemtwin {

// ------------------------------------------------------------------ response framing
namespace {

std::size_t decimal_digits(std::size_t n) {
  std::size_t d = 1;
  while (n >= 10) n /= 10, ++d;
  return d;
}

// Pads `text` so that, with the payload starting at frame offset `start`, no ',' lands at an
// offset ≡ block−1 (mod block). Spaces go before a separator comma, or before a whole string
// literal holding a comma (up to 15 spaces; a string with commas so dense that no shift
// works is left as it is).
std::string pad_payload(std::string_view text, std::size_t start, std::size_t block) {
  std::string out;
  out.reserve(text.size() + text.size() / block + 16);
  std::size_t pos = start;
  auto bad = [&](std::size_t offset) { return offset % block == block - 1; };
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      std::size_t j = i + 1;
      bool escaped = false;
      std::vector<std::size_t> commas;
      for (; j < text.size(); ++j) {
        const char d = text[j];
        if (escaped) {
          escaped = false;
        } else if (d == '\\') {
          escaped = true;
        } else if (d == '"') {
          break;
        } else if (d == ',') {
          commas.push_back(j - i);
        }
      }
      const std::size_t len = std::min(j + 1, text.size()) - i;
      std::size_t shift = 0;
      if (!commas.empty()) {
        for (std::size_t s = 0; s < 16; ++s) {
          bool ok = true;
          for (std::size_t off : commas)
            if (bad(pos + s + off)) {
              ok = false;
              break;
            }
          if (ok) {
            shift = s;
            break;
          }
        }
      }
      out.append(shift, ' ');
      out.append(text.substr(i, len));
      pos += shift + len;
      i += len;
      continue;
    }
    if (c == ',' && bad(pos)) {
      out += ' ';
      ++pos;
    }
    out += c;
    ++pos;
    ++i;
  }
  return out;
}

}  // namespace

std::string frame_response(std::string_view json_text, std::size_t block) {
  if (block < 2) return netstring::encode(json_text);
  std::size_t prefix = decimal_digits(json_text.size()) + 1;
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::string payload = pad_payload(json_text, prefix, block);
    const std::size_t needed = decimal_digits(payload.size()) + 1;
    if (needed == prefix) return netstring::encode(payload);
    prefix = needed;
  }
  return netstring::encode(json_text);  // unreachable in practice: the prefix grows by at most one digit
}

// ------------------------------------------------------------------ server
namespace {

volatile std::sig_atomic_t g_signal_stop = 0;
extern "C" void rpc_server_on_signal(int) { g_signal_stop = 1; }

using Clock = std::chrono::steady_clock;
constexpr int kSliceMs = 100;  // how often blocked waits look at the stop flag
// Method names are short identifiers; anything longer in a log line is the client's text, cut.
constexpr std::size_t kLoggedMethodChars = 80;
// A full server evicts an idle connection only once it has been idle this long (or a slot has
// not come free in this time): long enough for a closing client's FIN to be seen, short
// enough that a new client hardly notices.
constexpr auto kEvictAfter = std::chrono::milliseconds(50);
// How long a new client may wait for a place when every connection is in a call (or the
// threads of closed ones are still ending) before it is told the server is busy: the
// reference client waits 30 s for an answer.
constexpr auto kWaitForSlot = std::chrono::seconds(2);
// Reply pieces (send_reply): one block. A piece waits until the previous one is in the peer's
// kernel, so it is queued whole and, being far below the segment size and any window the
// peer advertises (receivers avoid windows smaller than a segment), delivered whole: the data
// becomes readable in whole blocks. Larger pieces (60 kB) were measured to split at the
// peer's window and fail 3 of 8 reference-client reads of a 512 × 512 overview.
constexpr std::size_t kPieceBytes = 4096;
constexpr int kSendBufferBytes = 256 * 1024;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

Clock::duration seconds(double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); }

/// True when the peer has closed (or half-closed) its side or the socket failed: the
/// connection is on its way out and no longer counts as open.
bool peer_closed(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

}  // namespace

struct RpcServer::Impl {
  const RpcDispatcher& dispatcher;
  RpcServerOptions options;
  std::ostream* log;
  int listen_fd = -1;
  int wake_pipe[2] = {-1, -1};
  int bound_port = 0;
  std::atomic<bool> stopping{false};

  /// One accepted socket and the thread serving it. The socket is closed only when the
  /// Connection is destroyed (by run(), after the thread has been joined), so run() may look
  /// at it or shut it down at any time before.
  struct Connection {
    enum State : int { Idle, Busy, Evicted };
    Connection(int socket, std::uint64_t n) : fd(socket), index(n), since(Clock::now().time_since_epoch().count()) {}
    ~Connection() {
      if (thread.joinable()) thread.join();
      ::close(fd);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    const int fd;
    const std::uint64_t index;
    std::thread thread;
    /// Idle: waiting for a complete request. Busy: a request is being handled or answered
    /// (however long the microscope takes, this is not idleness). Evicted: closed by run() to
    /// make room; the serving thread notices and leaves. Idle→Busy and Idle→Evicted are
    /// compare-and-swap, so a connection is never evicted in the middle of a call.
    std::atomic<int> state{Idle};
    std::atomic<Clock::rep> since;  ///< when the connection last became Idle (accepted or answered)
    std::atomic<bool> finished{false};
  };
  std::list<Connection> connections;  // touched by run() only

  mutable std::mutex stats_mutex;
  RpcServerStats stats;
  std::mutex log_mutex;

  Impl(const RpcDispatcher& d, RpcServerOptions o, std::ostream* l) : dispatcher(d), options(std::move(o)), log(l) {}

  bool should_stop() const { return stopping.load() || (options.handle_signals && g_signal_stop != 0); }

  void say(const std::string& line) {
    if (!log) return;
    std::lock_guard<std::mutex> lock(log_mutex);
    *log << line << '\n' << std::flush;
  }

  void bump(std::uint64_t RpcServerStats::*field) {
    std::lock_guard<std::mutex> lock(stats_mutex);
    ++(stats.*field);
  }

  void open_socket() {
    const std::string where = options.host + ":" + std::to_string(options.port);
    if (options.port < 0 || options.port > 65535) throw std::runtime_error("serve: port out of range: " + where);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(options.port);
    const int rc = ::getaddrinfo(options.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) throw std::runtime_error("serve: cannot resolve " + where + ": " + ::gai_strerror(rc));
    std::string last_error = "no address";
    for (addrinfo* a = res; a; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        last_error = std::strerror(errno);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 64) == 0) {
        listen_fd = fd;
        break;
      }
      last_error = std::strerror(errno);
      ::close(fd);
    }
    ::freeaddrinfo(res);
    if (listen_fd < 0) throw std::runtime_error("serve: cannot listen on " + where + ": " + last_error);
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    bound_port = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                            : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (::pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      close_fd(listen_fd);
      throw std::runtime_error(std::string("serve: pipe: ") + std::strerror(errno));
    }
  }

  // Sends all of `data`; false on error, timeout without progress, or stop.
  bool send_all(int fd, std::string_view data) {
    std::size_t sent = 0;
    auto last_progress = Clock::now();
    while (sent < data.size()) {
      const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        last_progress = Clock::now();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (should_stop()) return false;
      if (std::chrono::duration<double>(Clock::now() - last_progress).count() > options.write_timeout_s) return false;
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, kSliceMs);
    }
    return true;
  }

  /// Sends a framed reply so that a reader taking `block`-byte chunks always gets whole
  /// blocks (the reference client stops at a chunk that ends in ','; the padding keeps commas
  /// off block ends, which only helps while chunks stay block-aligned). The reply goes out in
  /// pieces of whole blocks, each only once the previous has left the send queue: the data
  /// then becomes readable in whole blocks, so a reader that catches up with the writer still
  /// stops on a block boundary. Costs tens of µs per block on loopback.
  bool send_reply(int fd, const std::string& framed) {
    const std::size_t block = options.response_block;
    if (block < 2 || framed.size() <= block) return send_all(fd, framed);
    const std::size_t piece = std::max<std::size_t>(1, kPieceBytes / block) * block;
    auto last_progress = Clock::now();
    for (std::size_t off = 0; off < framed.size(); off += piece) {
      for (;;) {  // wait until the previous piece has been taken by the peer's kernel
        int pending = 0;
        if (::ioctl(fd, SIOCOUTQ, &pending) != 0 || pending == 0) break;
        if (should_stop()) return false;
        if (std::chrono::duration<double>(Clock::now() - last_progress).count() > options.write_timeout_s) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      if (!send_all(fd, std::string_view(framed).substr(off, std::min(piece, framed.size() - off)))) return false;
      last_progress = Clock::now();
    }
    return true;
  }

  void send_error(int fd, int code, const std::string& message) {
    send_all(fd, frame_response(RpcDispatcher::error_response(code, message), options.response_block));
  }

  void serve_connection(Connection& c) {
    const int fd = c.fd;
    const std::string who = "connection " + std::to_string(c.index);
    netstring::Parser parser(options.max_request_bytes);
    std::vector<char> buf(64 * 1024);
    auto deadline = Clock::now() + seconds(options.read_timeout_s);
    // Leaves Idle for Busy; false when run() evicted the connection first.
    auto begin_call = [&c] {
      int idle = Connection::Idle;
      return c.state.compare_exchange_strong(idle, Connection::Busy);
    };
    auto end_call = [&] {
      c.since.store(Clock::now().time_since_epoch().count());
      c.state.store(Connection::Idle);
      deadline = Clock::now() + seconds(options.read_timeout_s);
    };
    auto answer = [&](const std::string& request) {
      bump(&RpcServerStats::requests);
      const auto t0 = Clock::now();
      // A client that closes its connection during the call cancels the call's work.
      rpc::CallerWatch watch([fd] { return peer_closed(fd); });
      std::optional<std::string> response = dispatcher.handle(request);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (log) {
        std::string method = "?";
        const auto j = nlohmann::json::parse(request, nullptr, false);
        if (j.is_object() && j.contains("method") && j["method"].is_string()) method = j["method"];
        const bool is_error = response && response->find("\"error\":{\"code\"") != std::string::npos;
        // The method name is the client's text: escaped and bounded, so it cannot forge log lines.
        say(who + ": " + printable_excerpt(method, kLoggedMethodChars) + (is_error ? " -> error" : " -> ok") + " (" +
            std::to_string(ms) + " ms)");
      }
      return !response || send_reply(fd, frame_response(*response, options.response_block));
    };
    bool open = true;
    while (open && !should_stop()) {
      // Answer every complete request already received, in order.
      std::string request;
      while (open && parser.next(request)) {
        if (!begin_call()) break;  // evicted: said below
        open = answer(request);
        end_call();
      }
      if (!open) break;
      if (c.state.load() == Connection::Evicted) {
        send_error(fd, rpc::kServerError,
                   "connection closed to make room for a new client: the server was full and this connection had "
                   "been idle longest");
        break;
      }
      if (Clock::now() > deadline) {
        if (!parser.idle()) {
          bump(&RpcServerStats::frame_errors);
          send_error(fd, rpc::kParseError, "timed out waiting for the rest of the request");
        }
        bump(&RpcServerStats::idle_timeouts);
        say(who + ": no complete request within " + std::to_string(options.read_timeout_s) + " s, closed");
        break;
      }
      pollfd p{fd, POLLIN, 0};
      const int pr = ::poll(&p, 1, kSliceMs);
      if (pr < 0 && errno != EINTR) break;
      if (pr <= 0) continue;
      if (c.state.load() == Connection::Evicted) continue;  // woken by run()'s shutdown: said above
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        break;
      }
      if (n == 0) {  // peer closed (or half-closed) its side, or run() evicted us (shut down our reading side)
        if (c.state.load() == Connection::Evicted) continue;
        if (!parser.idle()) {
          bump(&RpcServerStats::frame_errors);
          send_error(fd, rpc::kParseError, "netstring: connection closed inside a frame");
        }
        break;
      }
      try {
        parser.feed(buf.data(), static_cast<std::size_t>(n));
      } catch (const netstring::NetstringError& e) {
        // Answer the complete requests before the bad frame, then the error, then close.
        std::string earlier;
        while (parser.next(earlier) && begin_call()) {
          answer(earlier);
          end_call();
        }
        bump(&RpcServerStats::frame_errors);
        say(who + ": " + e.what() + ", closed");
        send_error(fd, rpc::kParseError, e.what());
        break;
      }
    }
    ::shutdown(fd, SHUT_RDWR);  // closed by ~Connection once run() has joined this thread
  }

  /// Makes room for one more connection: true when fewer than max_connections are open, or
  /// after evicting the one idle longest. Open means accepted, not finished, not evicted and
  /// its peer not gone (a client that has closed after its reply does not hold a slot).
  /// False when every open connection is in the middle of a call, or when the threads of
  /// closing connections reach twice the cap (they hold a thread until their call ends).
  bool make_room() {
    const auto t0 = Clock::now();
    const auto idle_for = [](const Connection& c) { return Clock::now().time_since_epoch() - Clock::duration(c.since.load()); };
    Connection* oldest = nullptr;
    for (;;) {
      reap(false);  // threads of connections that have ended free their places first
      std::size_t open = 0, alive = 0;
      oldest = nullptr;
      for (Connection& c : connections) {
        if (c.finished.load()) continue;
        ++alive;
        if (c.state.load() == Connection::Evicted || peer_closed(c.fd)) continue;
        ++open;
        if (c.state.load() == Connection::Idle && (!oldest || c.since.load() < oldest->since.load())) oldest = &c;
      }
      const bool threads_free = alive < 2 * options.max_connections;
      if (threads_free && open < options.max_connections) return true;
      // A client that has just closed may not show it for a moment, and one just accepted
      // may not have sent its request yet: evict only a connection idle for kEvictAfter, or
      // the idle longest once kEvictAfter has passed without a slot coming free.
      if (threads_free && oldest && (idle_for(*oldest) >= kEvictAfter || Clock::now() - t0 >= kEvictAfter)) break;
      // Every connection in a call, or closing ones still finishing (their threads end within
      // moments on a busy machine): wait for a place up to kWaitForSlot, far inside a
      // client's timeout, before answering "busy".
      if (Clock::now() - t0 >= kWaitForSlot) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    int idle = Connection::Idle;
    if (!oldest || !oldest->state.compare_exchange_strong(idle, Connection::Evicted)) return false;
    ::shutdown(oldest->fd, SHUT_RD);  // wakes its thread at once
    bump(&RpcServerStats::evicted);
    say("connection " + std::to_string(oldest->index) + ": evicted to make room (idle " +
        std::to_string(std::chrono::duration<double>(idle_for(*oldest)).count()) + " s)");
    return true;
  }

  void reap(bool all) {
    // ~Connection joins the thread, then closes the socket.
    connections.remove_if([all](const Connection& c) { return all || c.finished.load(); });
  }
};

RpcServer::RpcServer(const RpcDispatcher& dispatcher, RpcServerOptions options, std::ostream* log)
    : impl_(std::make_unique<Impl>(dispatcher, std::move(options), log)) {
  impl_->open_socket();
}

RpcServer::~RpcServer() {
  stop();
  impl_->reap(true);
  close_fd(impl_->listen_fd);
  close_fd(impl_->wake_pipe[0]);
  close_fd(impl_->wake_pipe[1]);
}

int RpcServer::port() const { return impl_->bound_port; }
const RpcServerOptions& RpcServer::options() const { return impl_->options; }

RpcServerStats RpcServer::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mutex);
  return impl_->stats;
}

void RpcServer::stop() {
  impl_->stopping.store(true);
  if (impl_->wake_pipe[1] >= 0) {
    const char c = 1;
    [[maybe_unused]] const ssize_t n = ::write(impl_->wake_pipe[1], &c, 1);
  }
}

void RpcServer::run() {
  Impl& s = *impl_;
  std::uint64_t index = 0;
  struct sigaction old_int {}, old_term {};
  if (s.options.handle_signals) {
    g_signal_stop = 0;
    struct sigaction sa {};
    sa.sa_handler = rpc_server_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll() returns at once
    ::sigaction(SIGINT, &sa, &old_int);
    ::sigaction(SIGTERM, &sa, &old_term);
  }
  s.say("stemtwin serve: listening on " + s.options.host + ":" + std::to_string(s.bound_port));
  while (!s.should_stop()) {
    s.reap(false);
    pollfd fds[2] = {{s.listen_fd, POLLIN, 0}, {s.wake_pipe[0], POLLIN, 0}};
    const int pr = ::poll(fds, 2, 200);
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0 || !(fds[0].revents & POLLIN)) continue;
    const int fd = ::accept4(s.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors or memory: back off instead of spinning on a pending connection.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        std::this_thread::sleep_for(std::chrono::milliseconds(kSliceMs));
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int sndbuf = kSendBufferBytes;  // room for a whole reply piece (send_reply)
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    s.reap(false);
    if (!s.make_room()) {
      s.bump(&RpcServerStats::refused);
      s.say("refused a connection: " + std::to_string(s.options.max_connections) + " connections busy with calls");
      s.send_error(fd, rpc::kServerError,
                   "server busy: " + std::to_string(s.options.max_connections) + " connections in the middle of calls, try again");
      ::close(fd);
      continue;
    }
    s.bump(&RpcServerStats::connections);
    Impl::Connection& c = s.connections.emplace_back(fd, ++index);
    try {
      c.thread = std::thread([&s, &c] {
        try {
          s.serve_connection(c);
        } catch (...) {
          ::shutdown(c.fd, SHUT_RDWR);
        }
        c.finished.store(true);
      });
    } catch (const std::system_error& e) {  // no thread to be had: drop this client, keep serving
      s.say(std::string("cannot start a connection thread: ") + e.what());
      s.connections.pop_back();
    }
  }
  s.reap(true);
  // Drain the wake pipe so a later run() is not woken by an old stop().
  char drain[64];
  while (::read(s.wake_pipe[0], drain, sizeof drain) > 0) {
  }
  if (s.options.handle_signals) {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
  }
  s.say(std::string("stemtwin serve: stopped") + (g_signal_stop ? " (signal)" : ""));
}

}  // namespace stemtwin

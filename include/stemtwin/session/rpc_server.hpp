#pragma once
// A TCP server speaking JSON-RPC 2.0 in netstrings (the DTMicroscope TEM client's wire
// format, docs/server.md): POSIX sockets, one thread per connection, any number of requests
// per connection (the DTMicroscope client opens one connection per request).
//
// Safety bounds (RpcServerOptions):
//  - binds 127.0.0.1 unless told otherwise;
//  - at most `max_connections` connections are open at once. Open means accepted and not yet
//    closed by either side: a client that has closed after its reply (the DTMicroscope client
//    connects once per request) no longer counts. When all are open, a new client still gets
//    a slot: the connection idle longest (waiting for a request, not in a call) is closed with
//    a -32000 error. Only when every open connection is in the middle of a call is the new
//    one answered -32000 "server busy" and closed;
//  - a request frame longer than `max_request_bytes` is refused as soon as its length prefix
//    is read (-32700), as is any malformed frame; the connection is then closed (a netstring
//    stream cannot be resynchronised) while the server goes on serving others;
//  - a client must deliver each complete request within `read_timeout_s` (counted from
//    connecting or from the previous response; time spent in a call does not count), so an
//    idle or slow-dripping client frees its slot within seconds; writes give up after
//    `write_timeout_s` without progress;
//  - compute per request is bounded by the method handlers (microscope_service.hpp).
//
// Responses are netstrings whose payload is padded with JSON whitespace (never changing the
// JSON value) so that no ',' other than the terminator falls on the last byte of a
// `response_block`-byte block of the reply. The reference DTMicroscope client reads 4096-byte
// chunks until the data received so far ends in ','; with this padding a reply arriving in
// whole 4096-byte chunks is never cut short. (Chunk sizes are up to the kernel; clients should
// read the announced length, as examples/defect_hunt_client.py does.)
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

#include "stemtwin/session/json_rpc.hpp"

namespace stemtwin {

struct RpcServerOptions {
  std::string host = "127.0.0.1";  ///< address to bind (numeric or a name); "0.0.0.0" exposes the twin
  int port = 9093;                 ///< the DTMicroscope TEM client's default; 0 = any free port
  std::size_t max_connections = 16;
  std::size_t max_request_bytes = 1 << 20;  ///< payload bytes of one request frame
  /// Seconds a connection may go without delivering a complete request (from connecting or
  /// from its previous reply). 5 s: the DTMicroscope client sends its request as soon as it has
  /// connected, and a request is at most max_request_bytes (1 MiB: 2 s at 4 Mbit/s); a silent
  /// connection only holds a thread and a slot.
  double read_timeout_s = 5;
  double write_timeout_s = 60;
  std::size_t response_block = 4096;  ///< 0 disables the comma padding
  /// run() installs SIGINT/SIGTERM handlers for its duration (restoring the previous ones on
  /// return) and returns when one arrives. For `stemtwin serve`; off for embedded servers.
  bool handle_signals = false;
};

struct RpcServerStats {
  std::uint64_t connections = 0;  ///< accepted and served
  std::uint64_t refused = 0;      ///< turned away "server busy" (every open connection in a call)
  std::uint64_t requests = 0;     ///< frames handled
  std::uint64_t frame_errors = 0; ///< malformed or oversized frames, timeouts mid-frame
  std::uint64_t idle_timeouts = 0;  ///< closed for not delivering a complete request in time
  std::uint64_t evicted = 0;        ///< idle connections closed to make room for a new client
};

class RpcServer {
 public:
  /// Binds and listens at once (throws std::runtime_error naming host:port on failure), so
  /// port() is valid and clients may connect before run() is called. `dispatcher` must
  /// outlive the server; `log` (optional) receives one line per connection event/request.
  RpcServer(const RpcDispatcher& dispatcher, RpcServerOptions options, std::ostream* log = nullptr);
  ~RpcServer();
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  int port() const;
  const RpcServerOptions& options() const;

  /// Serves until stop() is called or (handle_signals) SIGINT/SIGTERM arrives.
  /// Returns once every connection thread has finished (a request being computed runs to
  /// its end; idle connections notice within ~0.1 s).
  void run();
  /// Thread-safe; returns immediately. A stopped server stays stopped.
  void stop();

  RpcServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The netstring carrying `json_text`, padded as described above (block 0: plain netstring).
/// Inserted spaces sit only between JSON tokens, so the payload parses to the same value.
std::string frame_response(std::string_view json_text, std::size_t block);

}  // namespace stemtwin

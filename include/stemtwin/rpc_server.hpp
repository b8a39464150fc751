#pragma once
// A TCP server speaking JSON-RPC 2.0 in netstrings (the DTMicroscope TEM client's wire
// format, docs/server.md): POSIX sockets, one thread per connection, any number of requests
// per connection (the DTMicroscope client opens one connection per request).
//
// Safety bounds (RpcServerOptions):
//  - binds 127.0.0.1 unless told otherwise;
//  - at most `max_connections` connections are served at once; one more is answered with a
//    -32000 "server busy" error and closed;
//  - a request frame longer than `max_request_bytes` is refused as soon as its length prefix
//    is read (-32700), as is any malformed frame; the connection is then closed (a netstring
//    stream cannot be resynchronised) while the server goes on serving others;
//  - a client must deliver each complete request within `read_timeout_s` (counted from
//    connecting or from the previous response), so an idle or slow-dripping client frees its
//    slot; writes give up after `write_timeout_s` without progress;
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

#include "stemtwin/json_rpc.hpp"

namespace stemtwin {

struct RpcServerOptions {
  std::string host = "127.0.0.1";  ///< address to bind (numeric or a name); "0.0.0.0" exposes the twin
  int port = 9093;                 ///< the DTMicroscope TEM client's default; 0 = any free port
  std::size_t max_connections = 16;
  std::size_t max_request_bytes = 1 << 20;  ///< payload bytes of one request frame
  double read_timeout_s = 60;
  double write_timeout_s = 60;
  std::size_t response_block = 4096;  ///< 0 disables the comma padding
  /// run() installs SIGINT/SIGTERM handlers for its duration (restoring the previous ones on
  /// return) and returns when one arrives. For `stemtwin serve`; off for embedded servers.
  bool handle_signals = false;
};

struct RpcServerStats {
  std::uint64_t connections = 0;  ///< accepted and served
  std::uint64_t refused = 0;      ///< turned away (too many connections)
  std::uint64_t requests = 0;     ///< frames handled
  std::uint64_t frame_errors = 0; ///< malformed or oversized frames, timeouts mid-frame
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

#pragma once
// JSON-RPC 2.0 (https://www.jsonrpc.org/specification) request handling, independent of the
// transport: a table of methods and a function that turns one request text into one response
// text. RpcServer (rpc_server.hpp) carries these texts over TCP in netstrings.
//
// Requests: {"jsonrpc":"2.0","id":ID,"method":NAME,"params":P}. P is an object (named
// parameters) or an array (positional, mapped onto the names the method declares) or absent.
// "jsonrpc" may be absent (older DTMicroscope-style clients) but if present must be "2.0".
// A request without "id" is a notification: it runs, and nothing is answered. A batch (an
// array of requests, at most kMaxBatch) is answered by an array of the non-notification
// responses.
//
// Errors are JSON-RPC error objects {"code","message"}:
//   -32700 parse error (not JSON, or nested deeper than kMaxDepth); the message gives the
//          byte offset and the path of the value being read ("params.energy_eV"), so a NaN,
//          Infinity or overflowing number names its parameter
//   -32600 invalid request (not an object, bad "jsonrpc"/"method"/"id"/"params", empty or
//          oversized batch)
//   -32601 method not found
//   -32602 invalid params (unknown or missing parameter, wrong type or value, limits)
//   -32603 internal error (an unexpected non-standard exception)
//   -32000 server error: the method was valid but could not be carried out (message says why)
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace stemtwin {

namespace rpc {
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
constexpr int kServerError = -32000;
constexpr std::size_t kMaxDepth = 64;   ///< deepest nesting of arrays/objects accepted in a request
constexpr std::size_t kMaxBatch = 32;   ///< most requests in one batch

/// Whether the client of the call running on this thread has gone away (closed its
/// connection): the transport's answer, false outside a call or when no transport set one.
/// Long handlers poll it to stop work nobody will receive (RpcServer sets it per call).
bool caller_gone();

/// Sets caller_gone()'s check for the calling thread while it lives (restoring the previous).
class CallerWatch {
 public:
  explicit CallerWatch(std::function<bool()> gone);
  ~CallerWatch();
  CallerWatch(const CallerWatch&) = delete;
  CallerWatch& operator=(const CallerWatch&) = delete;

 private:
  std::function<bool()> gone_;
  const std::function<bool()>* previous_;
};
}  // namespace rpc

/// Thrown by method handlers to answer with a specific JSON-RPC error.
class RpcError : public std::runtime_error {
 public:
  RpcError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

/// Shorthand for the most common handler error.
[[noreturn]] inline void throw_invalid_params(const std::string& message) {
  throw RpcError(rpc::kInvalidParams, message);
}

class RpcDispatcher {
 public:
  /// A handler receives the parameters as an object (positional parameters already mapped
  /// to names; absent params → {}) and returns the result. Exceptions map to errors:
  /// RpcError → its code; nlohmann::json::exception and std::invalid_argument → -32602;
  /// other std::exception → -32000 with its message; anything else → -32603.
  using Handler = std::function<nlohmann::json(const nlohmann::json& params)>;

  /// Registers `method`. `positional` names the parameters in the order an array of params
  /// is mapped onto (more array items than names → -32602). Replaces an existing entry.
  void add(const std::string& method, std::vector<std::string> positional, Handler handler,
           std::string summary = {});

  bool has(const std::string& method) const { return methods_.count(method) != 0; }
  /// Names and one-line summaries, sorted by name.
  std::vector<std::pair<std::string, std::string>> methods() const;

  /// One request (or batch) text → the response text, or nullopt when nothing is to be sent
  /// (notifications). Never throws for any input.
  std::optional<std::string> handle(std::string_view request) const;

  /// Error response text {"jsonrpc":"2.0","id":null,"error":{code,message}} (used by the
  /// transport for framing errors and refusals).
  static std::string error_response(int code, const std::string& message);

 private:
  struct Entry {
    std::vector<std::string> positional;
    Handler handler;
    std::string summary;
  };
  /// nullopt for a notification.
  std::optional<nlohmann::json> handle_one(const nlohmann::json& request) const;
  std::map<std::string, Entry> methods_;
};

/// Deepest nesting of arrays/objects in a JSON text (strings skipped); stops counting at
/// `limit` + 1. Used to refuse pathological requests before parsing them.
std::size_t json_nesting_depth(std::string_view text, std::size_t limit);

/// Client text made safe to quote in a log line or a message: at most `max_bytes` bytes of
/// it, control characters, backslashes and bytes outside printable ASCII written as escapes
/// (\n, \t, \\, \xNN), and "…(+N bytes)" when cut. One line, whatever the input.
std::string printable_excerpt(std::string_view text, std::size_t max_bytes);

}  // namespace stemtwin

#pragma once
// Netstrings (D. J. Bernstein, https://cr.yp.to/proto/netstrings.txt): a byte string framed
// as `<decimal length>:<bytes>,` — e.g. "12:hello world!,". The frame the DTMicroscope TEM
// client and its server put around each JSON-RPC message (docs/server.md).
//
// Rules enforced here (a violation is a NetstringError; the stream cannot be resynchronised
// after one, so a server replies once and closes the connection):
//  - the length is 1..20 ASCII digits, no sign, no spaces; a leading zero only for "0";
//  - the length must not exceed `max_payload` (checked as soon as the digits are known,
//    before any payload is buffered, so a peer cannot make us allocate more than that);
//  - the payload is followed by exactly one ','.
#include <cstddef>
#include <deque>
#include <stdexcept>
#include <string>
#include <string_view>

namespace stemtwin::netstring {

class NetstringError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// `<len>:<payload>,`
std::string encode(std::string_view payload);

/// The payload of exactly one complete frame (nothing before or after it).
std::string decode(std::string_view frame, std::size_t max_payload);

/// Incremental parser for a byte stream: feed whatever recv() returned (partial frames,
/// several frames at once), then pop the complete payloads in order.
class Parser {
 public:
  explicit Parser(std::size_t max_payload) : max_payload_(max_payload) {}

  /// Consumes bytes. Throws NetstringError on a malformed frame; after that the parser stays
  /// failed (every further feed() throws the same error) and `error()` holds the reason.
  void feed(const char* data, std::size_t n);
  void feed(std::string_view s) { feed(s.data(), s.size()); }

  /// Moves the oldest complete payload into `out`; false when none is ready.
  bool next(std::string& out);

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  /// True between frames (no partial frame pending): a clean place to close a connection.
  bool idle() const { return state_ == State::Length && digits_ == 0; }
  /// Complete payloads not yet taken.
  std::size_t ready() const { return done_.size(); }

 private:
  enum class State { Length, Payload, Comma };
  [[noreturn]] void fail(const std::string& why);

  std::size_t max_payload_;
  State state_ = State::Length;
  std::size_t length_ = 0;  // announced payload length
  std::size_t digits_ = 0;  // digits read of the current length
  bool leading_zero_ = false;
  std::string current_;
  std::deque<std::string> done_;
  std::string error_;
};

}  // namespace stemtwin::netstring

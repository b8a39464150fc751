// libFuzzer target: the server's input path without a socket — netstring framing of a byte
// stream (fed in two parts, as recv() may split it), then every payload through the JSON-RPC
// dispatcher with one echo method. Malformed input must give NetstringError or an error
// response, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "stemtwin/session/json_rpc.hpp"
#include "stemtwin/session/netstring.hpp"

namespace {
const stemtwin::RpcDispatcher& dispatcher() {
  static const stemtwin::RpcDispatcher d = [] {
    stemtwin::RpcDispatcher r;
    r.add("echo", {"value"}, [](const nlohmann::json& p) { return p.at("value"); }, "returns value");
    return r;
  }();
  return d;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The whole input as one request text, as a client's payload would arrive.
  (void)dispatcher().handle(bytes);
  // The same bytes as a netstring stream, split in the middle.
  stemtwin::netstring::Parser parser(1 << 16);
  try {
    parser.feed(bytes.substr(0, size / 2));
    parser.feed(bytes.substr(size / 2));
  } catch (const stemtwin::netstring::NetstringError&) {
  }
  std::string payload;
  while (parser.next(payload)) (void)dispatcher().handle(payload);
  try {
    (void)stemtwin::netstring::decode(bytes, 1 << 16);
  } catch (const stemtwin::netstring::NetstringError&) {
  }
  return 0;
}

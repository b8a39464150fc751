// `stemtwin serve`: netstrings, JSON-RPC 2.0 dispatch, the TCP server (bounds, timeouts,
// concurrency, stop) and the DTMicroscope-compatible microscope methods on a tiny specimen.
// Everything runs on 127.0.0.1 with ephemeral ports; every wait is bounded.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "stemtwin/json_rpc.hpp"
#include "stemtwin/microscope.hpp"
#include "stemtwin/microscope_service.hpp"
#include "stemtwin/netstring.hpp"
#include "stemtwin/rpc_server.hpp"
#include "stemtwin/serve.hpp"

using namespace stemtwin;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// A blocking loopback client with a receive timeout, so no test can hang.
class Client {
 public:
  explicit Client(int port, double timeout_s = 20) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{static_cast<time_t>(timeout_s), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool send_raw(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  /// The next response frame's payload; empty on timeout or close.
  std::string read_payload() {
    std::string payload;
    while (!parser_.next(payload)) {
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return {};
      parser_.feed(buf, static_cast<std::size_t>(n));
    }
    return payload;
  }
  /// The next response frame parsed as JSON; null JSON on timeout or close.
  json read() {
    const std::string payload = read_payload();
    return payload.empty() ? json() : json::parse(payload);
  }
  /// True when the server closed the connection (recv returns 0) within the timeout.
  bool closed_by_peer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }
  json request(const std::string& method, const json& params = json::object(), int id = 1) {
    const json req = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
    if (!send_raw(netstring::encode(req.dump()))) return json();
    return read();
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  netstring::Parser parser_{1u << 28};
};

/// One request on a fresh connection, as the DTMicroscope client does.
json call(int port, const std::string& method, const json& params = json::object()) {
  Client c(port);
  return c.request(method, params);
}

int error_code(const json& response) {
  if (!response.is_object() || !response.contains("error")) return 0;
  return response["error"]["code"].get<int>();
}

/// A server running in a background thread; stopped and joined on destruction.
struct RunningServer {
  RpcServer server;
  std::thread thread;
  RunningServer(const RpcDispatcher& d, RpcServerOptions o) : server(d, with_port0(std::move(o))) {
    thread = std::thread([this] { server.run(); });
  }
  ~RunningServer() {
    server.stop();
    thread.join();
  }
  int port() const { return server.port(); }
  static RpcServerOptions with_port0(RpcServerOptions o) {
    o.port = 0;
    o.host = "127.0.0.1";
    return o;
  }
};

/// A dispatcher without physics: echo, add (positional a, b), sleep_ms.
RpcDispatcher toy_dispatcher() {
  RpcDispatcher d;
  d.add("echo", {"value"}, [](const json& p) { return p.value("value", json()); });
  d.add("add", {"a", "b"}, [](const json& p) {
    if (!p.contains("a") || !p.contains("b")) throw_invalid_params("add needs a and b");
    return json(p.at("a").get<double>() + p.at("b").get<double>());
  });
  d.add("sleep_ms", {"ms"}, [](const json& p) {
    std::this_thread::sleep_for(std::chrono::milliseconds(p.at("ms").get<int>()));
    return json(1);
  });
  d.add("fail", {}, [](const json&) -> json { throw std::runtime_error("it broke"); });
  return d;
}

}  // namespace

// ===================================================================== netstrings

TEST(Netstring, EncodeDecodeRoundTrip) {
  EXPECT_EQ(netstring::encode("hello world!"), "12:hello world!,");
  EXPECT_EQ(netstring::encode(""), "0:,");
  EXPECT_EQ(netstring::decode("12:hello world!,", 100), "hello world!");
  EXPECT_EQ(netstring::decode("0:,", 100), "");
  const std::string binary("a\0,:b", 5);
  EXPECT_EQ(netstring::decode(netstring::encode(binary), 100), binary);
}

TEST(Netstring, ParserTakesPartialAndMultipleFrames) {
  netstring::Parser p(1000);
  const std::string stream = netstring::encode("first") + netstring::encode("") + netstring::encode("{\"a\":[1,2,3]}");
  std::vector<std::string> got;
  std::string s;
  for (char c : stream) {  // one byte at a time
    p.feed(&c, 1);
    while (p.next(s)) got.push_back(s);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "first");
  EXPECT_EQ(got[1], "");
  EXPECT_EQ(got[2], "{\"a\":[1,2,3]}");
  EXPECT_TRUE(p.idle());
  // All at once, plus the start of a fourth frame.
  netstring::Parser q(1000);
  q.feed(stream + "5:ab");
  EXPECT_EQ(q.ready(), 3u);
  EXPECT_FALSE(q.idle());
}

TEST(Netstring, MalformedFramesAreErrors) {
  for (const std::string bad : {"x:abc,", "-1:a,", ":abc,", "3:abcd", "3:abc;", "01:a,", " 3:abc,", "3 :abc,"}) {
    netstring::Parser p(1000);
    EXPECT_THROW(p.feed(bad), netstring::NetstringError) << bad;
    EXPECT_TRUE(p.failed()) << bad;
    EXPECT_THROW(p.feed("1:a,"), netstring::NetstringError) << "stays failed after " << bad;
  }
  EXPECT_THROW(netstring::decode("5:abc,", 100), netstring::NetstringError);       // incomplete
  EXPECT_THROW(netstring::decode("1:a,1:b,", 100), netstring::NetstringError);    // two frames
}

TEST(Netstring, LengthBeyondTheLimitIsRefusedBeforeThePayload) {
  netstring::Parser p(100);
  EXPECT_NO_THROW(p.feed("100:"));
  netstring::Parser q(100);
  try {
    q.feed("101");  // refused on the third digit, before any payload is buffered
    FAIL() << "no error";
  } catch (const netstring::NetstringError& e) {
    EXPECT_NE(std::string(e.what()).find("100 bytes"), std::string::npos) << e.what();
  }
  netstring::Parser r(1000);
  EXPECT_THROW(r.feed("99999999999999999999999:"), netstring::NetstringError);  // no overflow
}

// ===================================================================== response padding

TEST(FrameResponse, NoCommaEndsABlockAndTheValueIsUnchanged) {
  std::mt19937 rng(7);
  for (const std::size_t block : {std::size_t{7}, std::size_t{64}, std::size_t{4096}}) {
    for (int trial = 0; trial < 20; ++trial) {
      json v = json::array();
      const int n = 50 + static_cast<int>(rng() % 3000);
      for (int i = 0; i < n; ++i) {
        if (rng() % 10 == 0)
          v.push_back("text, with a comma " + std::to_string(i));
        else
          v.push_back(json::array({static_cast<double>(rng() % 1000) / 7.0, static_cast<int>(rng() % 100)}));
      }
      const std::string text = v.dump();
      const std::string frame = frame_response(text, block);
      ASSERT_EQ(frame.back(), ',');
      std::size_t bad = 0;
      for (std::size_t i = 0; i + 1 < frame.size(); ++i)
        if (frame[i] == ',' && i % block == block - 1) ++bad;
      EXPECT_EQ(bad, 0u) << "block " << block << " trial " << trial;
      EXPECT_EQ(json::parse(netstring::decode(frame, 1u << 30)), v);
    }
  }
  EXPECT_EQ(frame_response("[1,2]", 0), "5:[1,2],");
}

// ===================================================================== JSON-RPC dispatch

TEST(JsonRpc, ErrorsFollowTheSpecification) {
  const RpcDispatcher d = toy_dispatcher();
  auto handle = [&](const std::string& text) { return json::parse(d.handle(text).value()); };
  EXPECT_EQ(error_code(handle("{not json")), rpc::kParseError);
  EXPECT_TRUE(handle("{not json")["id"].is_null());
  EXPECT_EQ(error_code(handle("42")), rpc::kInvalidRequest);
  EXPECT_EQ(error_code(handle(R"({"jsonrpc":"1.0","id":1,"method":"echo"})")), rpc::kInvalidRequest);
  EXPECT_EQ(error_code(handle(R"({"jsonrpc":"2.0","id":1,"method":5})")), rpc::kInvalidRequest);
  EXPECT_EQ(error_code(handle(R"({"jsonrpc":"2.0","id":[1],"method":"echo"})")), rpc::kInvalidRequest);
  EXPECT_EQ(error_code(handle(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":3})")), rpc::kInvalidRequest);
  EXPECT_EQ(error_code(handle(R"({"jsonrpc":"2.0","id":1,"method":"nope"})")), rpc::kMethodNotFound);
  EXPECT_EQ(error_code(handle(R"({"jsonrpc":"2.0","id":1,"method":"add","params":{"a":1}})")), rpc::kInvalidParams);
  EXPECT_EQ(error_code(handle(R"({"jsonrpc":"2.0","id":1,"method":"add","params":{"a":1,"b":"x"}})")), rpc::kInvalidParams);
  EXPECT_EQ(error_code(handle(R"({"jsonrpc":"2.0","id":1,"method":"add","params":[1,2,3]})")), rpc::kInvalidParams);
  const json failed = handle(R"({"jsonrpc":"2.0","id":"q","method":"fail"})");
  EXPECT_EQ(error_code(failed), rpc::kServerError);
  EXPECT_EQ(failed["id"], "q");
  EXPECT_NE(failed["error"]["message"].get<std::string>().find("it broke"), std::string::npos);
  EXPECT_EQ(error_code(handle("[]")), rpc::kInvalidRequest);
  EXPECT_EQ(error_code(handle(std::string(100, '[') + std::string(100, ']'))), rpc::kParseError);  // too deep
}

TEST(JsonRpc, PositionalNamedNotificationsAndBatches) {
  const RpcDispatcher d = toy_dispatcher();
  auto handle = [&](const std::string& text) { return json::parse(d.handle(text).value()); };
  EXPECT_EQ(handle(R"({"jsonrpc":"2.0","id":1,"method":"add","params":[2,3]})")["result"], 5.0);
  EXPECT_EQ(handle(R"({"jsonrpc":"2.0","id":2,"method":"add","params":{"b":3,"a":2}})")["result"], 5.0);
  EXPECT_EQ(handle(R"({"id":3,"method":"echo","params":{"value":"no jsonrpc key"}})")["result"], "no jsonrpc key");
  EXPECT_FALSE(d.handle(R"({"jsonrpc":"2.0","method":"echo","params":[1]})").has_value());  // notification
  EXPECT_FALSE(d.handle(R"({"jsonrpc":"2.0","method":"nope"})").has_value());               // errors too
  const json batch = handle(R"([{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]},
                                {"jsonrpc":"2.0","method":"echo","params":[2]},
                                {"jsonrpc":"2.0","id":3,"method":"nope"}])");
  ASSERT_TRUE(batch.is_array());
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0]["result"], 1);
  EXPECT_EQ(error_code(batch[1]), rpc::kMethodNotFound);
}

// ===================================================================== the TCP server

TEST(RpcServer, AnswersManyRequestsOnOneConnectionAndOnePerConnection) {
  const RpcDispatcher d = toy_dispatcher();
  RunningServer s(d, {});
  ASSERT_GT(s.port(), 0);
  Client c(s.port());
  ASSERT_TRUE(c.connected());
  // Two requests in one write, answered in order.
  const std::string two = netstring::encode(R"({"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]})") +
                          netstring::encode(R"({"jsonrpc":"2.0","id":2,"method":"echo","params":["x"]})");
  ASSERT_TRUE(c.send_raw(two));
  EXPECT_EQ(c.read()["result"], 3.0);
  EXPECT_EQ(c.read()["result"], "x");
  // A notification is not answered: the next reply on the connection is the next request's.
  ASSERT_TRUE(c.send_raw(netstring::encode(R"({"jsonrpc":"2.0","method":"echo","params":["quiet"]})")));
  EXPECT_EQ(c.request("echo", {{"value", "loud"}}, 3)["result"], "loud");
  EXPECT_EQ(call(s.port(), "echo", {{"value", 7}})["result"], 7);
  EXPECT_EQ(error_code(call(s.port(), "missing")), rpc::kMethodNotFound);
}

TEST(RpcServer, MalformedFrameGetsAnErrorAndTheServerGoesOn) {
  const RpcDispatcher d = toy_dispatcher();
  RunningServer s(d, {});
  {
    Client c(s.port());
    ASSERT_TRUE(c.send_raw("abc:{}"));
    const json r = c.read();
    EXPECT_EQ(error_code(r), rpc::kParseError) << r.dump();
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    Client c(s.port());  // a valid frame holding invalid JSON: error, the connection stays usable
    ASSERT_TRUE(c.send_raw(netstring::encode("{\"method\": ")));
    EXPECT_EQ(error_code(c.read()), rpc::kParseError);
    EXPECT_EQ(c.request("echo", {{"value", 1}})["result"], 1);
  }
  {
    Client c(s.port());  // frame cut short by the client closing its side
    ASSERT_TRUE(c.send_raw("10:{\"id\""));
    c.shutdown_write();
    EXPECT_EQ(error_code(c.read()), rpc::kParseError);
  }
  EXPECT_EQ(call(s.port(), "add", json::array({2, 2}))["result"], 4.0);
  EXPECT_EQ(s.server.stats().frame_errors, 2u);
}

TEST(RpcServer, OversizedFrameIsRefusedFromItsLengthPrefix) {
  const RpcDispatcher d = toy_dispatcher();
  RpcServerOptions o;
  o.max_request_bytes = 1000;
  RunningServer s(d, o);
  Client c(s.port());
  ASSERT_TRUE(c.send_raw("1000000:"));  // announces 1 MB, sends nothing more
  const json r = c.read();
  EXPECT_EQ(error_code(r), rpc::kParseError);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("1000 bytes"), std::string::npos) << r.dump();
  EXPECT_EQ(call(s.port(), "echo", {{"value", std::string(900, 'a')}})["result"].get<std::string>().size(), 900u);
}

TEST(RpcServer, ConcurrentClientsAreServedAndAnIdleOneBlocksNobody) {
  const RpcDispatcher d = toy_dispatcher();
  RunningServer s(d, {});
  Client idle(s.port());  // connects and says nothing
  ASSERT_TRUE(idle.connected());
  const auto t0 = Clock::now();
  // Two clients each asking for 300 ms of work at the same time: served in parallel threads.
  auto a = std::async(std::launch::async, [&] { return call(s.port(), "sleep_ms", {{"ms", 300}}); });
  auto b = std::async(std::launch::async, [&] { return call(s.port(), "sleep_ms", {{"ms", 300}}); });
  EXPECT_EQ(a.get()["result"], 1);
  EXPECT_EQ(b.get()["result"], 1);
  const double t = seconds_since(t0);
  EXPECT_LT(t, 0.55) << "two 300 ms requests took " << t << " s: not concurrent";  // serial would be ≥ 0.6 s
}

TEST(RpcServer, ConnectionsBeyondTheCapAreRefused) {
  const RpcDispatcher d = toy_dispatcher();
  RpcServerOptions o;
  o.max_connections = 2;
  RunningServer s(d, o);
  Client c1(s.port()), c2(s.port());
  EXPECT_EQ(c1.request("echo", {{"value", 1}})["result"], 1);  // both are being served
  EXPECT_EQ(c2.request("echo", {{"value", 2}})["result"], 2);
  Client c3(s.port());
  const json r = c3.read();
  EXPECT_EQ(error_code(r), rpc::kServerError);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("busy"), std::string::npos);
  EXPECT_EQ(s.server.stats().refused, 1u);
}

TEST(RpcServer, SlowOrIdleClientIsDisconnectedAfterTheReadTimeout) {
  const RpcDispatcher d = toy_dispatcher();
  RpcServerOptions o;
  o.read_timeout_s = 0.3;
  RunningServer s(d, o);
  Client slow(s.port());
  ASSERT_TRUE(slow.send_raw("40:{\"jsonrpc\""));  // half a frame, then silence
  const auto t0 = Clock::now();
  const json r = slow.read();
  EXPECT_EQ(error_code(r), rpc::kParseError);
  const double t = seconds_since(t0);
  EXPECT_GT(t, 0.2);
  EXPECT_LT(t, 3.0);
  Client idle(s.port());
  EXPECT_TRUE(idle.closed_by_peer());  // closed quietly: no partial frame pending
}

TEST(RpcServer, StopReturnsPromptlyWithClientsConnected) {
  const RpcDispatcher d = toy_dispatcher();
  RpcServer server(d, RunningServer::with_port0({}));
  std::promise<void> done;
  std::thread t([&] {
    server.run();
    done.set_value();
  });
  Client idle(server.port());
  EXPECT_EQ(idle.request("echo", {{"value", 1}})["result"], 1);
  const auto t0 = Clock::now();
  server.stop();
  const bool returned = done.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  const double elapsed = seconds_since(t0);
  t.join();
  EXPECT_TRUE(returned);
  EXPECT_LT(elapsed, 1.0) << "run() took " << elapsed << " s to return after stop()";
}

TEST(RpcServer, BindFailureNamesTheAddress) {
  const RpcDispatcher d = toy_dispatcher();
  RpcServer first(d, RunningServer::with_port0({}));
  RpcServerOptions o;
  o.port = first.port();
  try {
    RpcServer second(d, o);
    FAIL() << "bound the same port twice";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(first.port())), std::string::npos) << e.what();
  }
}

// ===================================================================== the microscope methods

namespace {

/// SrTiO3, 4 × 4 × 1 cells (15.6 × 15.6 × 3.9 Å); 0.05 Å sampling (band limit ≈ 167 mrad,
/// above HAADF's 160), small windows: a 16 × 16 scan takes well under a second.
Specimen tiny_specimen() {
  Structure s;
  const double a = 3.905;
  const int n = 4;
  s.cell = {n * a, n * a, a};
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) {
      const double x = i * a, y = j * a;
      s.atoms.push_back({38, x, y, 0, 1, 0.08});
      s.atoms.push_back({22, x + a / 2, y + a / 2, a / 2, 1, 0.06});
      s.atoms.push_back({8, x + a / 2, y + a / 2, 0, 1, 0.08});
      s.atoms.push_back({8, x + a / 2, y, a / 2, 1, 0.08});
      s.atoms.push_back({8, x, y + a / 2, a / 2, 1, 0.08});
    }
  return make_specimen(s);
}

MicroscopeSettings tiny_settings() {
  MicroscopeSettings st;
  st.sampling_A = 0.05;
  st.potential.slice_thickness_A = 3.905 / 2;
  st.min_window_A = 16;
  st.window_snap_A = 4;
  st.seed = 11;
  return st;
}

ServiceLimits tiny_limits() {
  ServiceLimits l;
  l.max_scan_pixels = 4096;
  l.max_field_of_view_A = 40;
  return l;
}

/// The whole stack: Microscope → MicroscopeService → RpcDispatcher → RpcServer (port 0).
struct Twin {
  Microscope microscope{tiny_specimen(), tiny_settings()};
  MicroscopeService service{microscope, tiny_limits()};
  RpcDispatcher dispatcher;
  std::unique_ptr<RunningServer> server;
  Twin() {
    service.register_methods(dispatcher);
    server = std::make_unique<RunningServer>(dispatcher, RpcServerOptions{});
  }
  int port() const { return server->port(); }
  json result(const std::string& method, const json& params = json::object()) {
    const json r = call(port(), method, params);
    EXPECT_TRUE(r.contains("result")) << method << ": " << r.dump();
    return r.value("result", json());
  }
  int error(const std::string& method, const json& params = json::object(), std::string* message = nullptr) {
    const json r = call(port(), method, params);
    if (message && r.contains("error")) *message = r["error"]["message"];
    return error_code(r);
  }
};

const json kSmallScan = {{"device", "scan"}, {"size", 16}, {"exposure", 2e-6}, {"field_of_view", 7.81e-10}};

std::vector<float> flatten(const json& nested_list) {
  std::vector<float> out;
  for (const json& v : nested_list) {
    if (v.is_array()) {
      const auto inner = flatten(v);
      out.insert(out.end(), inner.begin(), inner.end());
    } else {
      out.push_back(v.get<float>());
    }
  }
  return out;
}

std::vector<unsigned char> unbase64(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : 63;
  };
  std::vector<unsigned char> out;
  for (std::size_t i = 0; i + 3 < s.size(); i += 4) {
    const int v = (val(s[i]) << 18) | (val(s[i + 1]) << 12) | ((s[i + 2] == '=' ? 0 : val(s[i + 2])) << 6) |
                  (s[i + 3] == '=' ? 0 : val(s[i + 3]));
    out.push_back(static_cast<unsigned char>(v >> 16));
    if (s[i + 2] != '=') out.push_back(static_cast<unsigned char>((v >> 8) & 255));
    if (s[i + 3] != '=') out.push_back(static_cast<unsigned char>(v & 255));
  }
  return out;
}

}  // namespace

TEST(MicroscopeService, DevicesAndTheirSettings) {
  Twin t;
  EXPECT_EQ(t.result("get_detectors"), json({"flu_camera", "ceta_camera", "scan", "super_x"}));
  EXPECT_EQ(t.result("activate_device", {{"device", "scan"}}), 1);
  EXPECT_EQ(t.error("activate_device", {{"device", "eels"}}), rpc::kInvalidParams);
  EXPECT_EQ(t.result("device_settings", {{"device", "scan"}, {"size", 16}, {"detectors", {"haadf", "bf"}}}), 1);
  const json s = t.result("get_device_settings", {{"device", "scan"}});
  EXPECT_EQ(s["size"], 16);
  EXPECT_EQ(s["detectors"], json({"HAADF", "BF"}));
  std::string msg;
  EXPECT_EQ(t.error("device_settings", {{"device", "scan"}, {"sise", 16}}, &msg), rpc::kInvalidParams);
  EXPECT_NE(msg.find("sise"), std::string::npos) << msg;
  EXPECT_EQ(t.error("device_settings", {{"device", "scan"}, {"size", json::array({100, 100})}}, &msg), rpc::kInvalidParams);
  EXPECT_NE(msg.find("4096"), std::string::npos) << "the pixel limit is named: " << msg;
  EXPECT_EQ(t.error("device_settings", {{"device", "scan"}, {"field_of_view", 1e-6}}, &msg), rpc::kInvalidParams);
  EXPECT_NE(msg.find("limit"), std::string::npos) << msg;
  EXPECT_EQ(t.error("device_settings", {{"device", "scan"}, {"detectors", {"XYZ"}}}), rpc::kInvalidParams);
  EXPECT_EQ(t.error("device_settings", {{"device", "scan"}, {"exposure", -1}}), rpc::kInvalidParams);
  EXPECT_EQ(t.error("device_settings", {{"device", "scan"}, {"exposure", "fast"}}), rpc::kInvalidParams);
  EXPECT_EQ(t.error("no_such_method"), rpc::kMethodNotFound);
  // A refused change leaves the settings as they were.
  EXPECT_EQ(t.result("get_device_settings", {{"device", "scan"}}), s);
}

TEST(MicroscopeService, StageRoundTripInMetresAndRadians) {
  Twin t;
  json r = t.result("set_stage", {{"stage_positions", {{"x", 1e-9}, {"y", 2e-9}, {"a", 0.01}}}, {"relative", false}});
  EXPECT_NEAR(r["new_stage"][0].get<double>(), 1e-9, 1e-24);
  const json st = t.result("get_stage");
  ASSERT_EQ(st.size(), 5u);
  EXPECT_NEAR(st[0].get<double>(), 1e-9, 1e-24);
  EXPECT_NEAR(st[1].get<double>(), 2e-9, 1e-24);
  EXPECT_NEAR(st[3].get<double>(), 0.01, 1e-15);
  EXPECT_NEAR(t.microscope.stage().x_A, 10.0, 1e-12);  // 1 nm = 10 Å on the session
  EXPECT_NEAR(t.microscope.stage().y_A, 20.0, 1e-12);
  t.result("set_stage", {{"stage_positions", {{"x", 5e-10}}}});  // relative by default
  EXPECT_NEAR(t.microscope.stage().x_A, 15.0, 1e-12);
  EXPECT_NEAR(t.microscope.stage().y_A, 20.0, 1e-12);
  t.result("set_stage", {{"stage_positions", json::array({3e-10, nullptr, 1e-9})}, {"relative", false}});  // list form
  EXPECT_NEAR(t.microscope.stage().x_A, 3.0, 1e-12);
  EXPECT_NEAR(t.microscope.stage().y_A, 20.0, 1e-12);
  EXPECT_NEAR(t.microscope.stage().z_A, 10.0, 1e-12);
  EXPECT_EQ(t.error("set_stage", {{"stage_positions", {{"a", 0.5}}}, {"relative", false}}), rpc::kInvalidParams);  // tilt limit
  EXPECT_EQ(t.error("set_stage", {{"stage_positions", {{"w", 1e-9}}}}), rpc::kInvalidParams);
  EXPECT_EQ(t.error("set_stage", {{"stage_positions", 5}}), rpc::kInvalidParams);
  EXPECT_NEAR(t.microscope.stage().x_A, 3.0, 1e-12);
}

TEST(MicroscopeService, AcquireImageIsTheSessionScanInClientUnits) {
  Twin t;
  const json r = t.result("acquire_image", kSmallScan);
  ASSERT_TRUE(r.is_array());
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1], json({16, 16}));
  EXPECT_EQ(r[2], "float32");
  const std::vector<float> got = flatten(r[0]);
  ASSERT_EQ(got.size(), 256u);
  // The same first call on an identical session, driven directly in Å and µs: same bytes.
  Microscope m(tiny_specimen(), tiny_settings());
  ScanSettings s = m.scan_settings();
  s.nx = s.ny = 16;
  s.fov_x_A = s.fov_y_A = 7.81;
  s.dwell_us = 2;
  m.set_scan(s);
  m.set_detectors({t.service.detector_for("HAADF")});
  const Image ref = m.scan().images.at("HAADF");
  double maxdiff = 0, lo = 1e300, hi = -1e300;
  for (std::size_t i = 0; i < 256; ++i) {
    maxdiff = std::max(maxdiff, std::fabs(double(got[i]) - double(float(ref.data[i]))));
    lo = std::min(lo, ref.data[i]), hi = std::max(hi, ref.data[i]);
  }
  EXPECT_EQ(maxdiff, 0.0) << "float32 values survive the JSON list exactly";
  EXPECT_GT(hi, lo) << "a crystal image is not flat";
  // Several detectors: [n, ny, nx] in the order asked; the binary form decodes to the same size.
  json two = kSmallScan;
  two["detectors"] = {"BF", "ADF"};
  EXPECT_EQ(t.result("acquire_image", two)[1], json({2, 16, 16}));
  two["encoding"] = "base64";
  const json b = t.result("acquire_image", two);
  EXPECT_EQ(b["shape"], json({2, 16, 16}));
  EXPECT_EQ(unbase64(b["__ndarray_b64__"].get<std::string>()).size(), 2u * 256u * 4u);
  // The reference client reads 4096-byte chunks until the data ends in ','. Replayed on the
  // server's bytes of a diffraction pattern (≈ 200 kB, ~40 000 commas), it stops at the end.
  Client c(t.port());
  json req = {{"jsonrpc", "2.0"}, {"id", 9}, {"method", "acquire_image"}, {"params", {{"device", "ceta_camera"}}}};
  ASSERT_TRUE(c.send_raw(netstring::encode(req.dump())));
  const std::string frame = frame_response(c.read_payload(), 0);  // the bytes as sent: "<len>:<payload>,"
  ASSERT_GT(frame.size(), 20u * 4096u) << frame.substr(0, 300);
  std::size_t got_bytes = 0;
  do got_bytes = std::min(frame.size(), got_bytes + 4096);
  while (frame[got_bytes - 1] != ',');
  EXPECT_EQ(got_bytes, frame.size()) << "a chunk ended on a comma inside the JSON";
  EXPECT_EQ(json::parse(netstring::decode(frame, 1u << 30))["result"][2], "float32");
  // Overrides in acquire_image are for that call only.
  EXPECT_EQ(t.result("get_device_settings", {{"device", "scan"}})["detectors"], json({"HAADF"}));
}

TEST(MicroscopeService, CamerasRecordThePatternAtTheBeamPosition) {
  Twin t;
  ASSERT_EQ(t.result("device_settings", kSmallScan), 1);
  EXPECT_EQ(t.result("set_beam_position", {{"x", 0.25}, {"y", 0.75}}), 1);
  EXPECT_EQ(t.result("get_beam_position"), json({0.25, 0.75}));
  const json ceta = t.result("acquire_image", {{"device", "ceta_camera"}});
  ASSERT_EQ(ceta[1].size(), 2u);
  const std::size_t h = ceta[1][0], w = ceta[1][1];
  EXPECT_GT(h, 8u);
  const json flu = t.result("acquire_image", {{"device", "flu_camera"}});  // binning 2 by default
  EXPECT_EQ(flu[1], json({h / 2, w / 2}));
  EXPECT_EQ(t.result("acquire_image", {{"device", "ceta_camera"}, {"size", 32}})[1], json({32, 32}));
  const json stack = t.result("acquire_image_stack", {{"device", "ceta_camera"}, {"frames", 2}, {"size", 16}});
  EXPECT_EQ(stack[1], json({2, 16, 16}));
  // The pattern is read out in electrons: its sum is the dose of the 1 ms default exposure
  // at 20 pA (1.25e5 e⁻; shot noise 0.3 %), less what scatters beyond the band limit.
  double sum = 0;
  for (float v : flatten(ceta[0])) sum += v;
  const double electrons = 20e-12 * 1e-3 / 1.602176634e-19;
  EXPECT_GT(sum, 0.9 * electrons);
  EXPECT_LT(sum, 1.02 * electrons);
  EXPECT_EQ(t.error("set_beam_position", {{"x", 1.5}, {"y", 0.5}}), rpc::kInvalidParams);
  EXPECT_EQ(t.error("acquire_image", {{"device", "ceta_camera"}, {"exposure", 100}}), rpc::kInvalidParams);
}

TEST(MicroscopeService, BeamFractionsMatchTheScanRaster) {
  Twin t;
  json settings = kSmallScan;
  settings["size"] = json::array({8, 6});
  settings["rotation"] = 0.5;
  settings["field_of_view"] = json::array({6e-10, 5e-10});
  ASSERT_EQ(t.result("device_settings", settings), 1);
  t.result("acquire_image", {{"device", "scan"}});  // puts the settings on the session
  const ScanResult r = t.microscope.scan();
  ASSERT_EQ(r.positions_A.size(), 48u);
  double err = 0;
  for (std::size_t iy = 0; iy < 6; ++iy)
    for (std::size_t ix = 0; ix < 8; ++ix) {
      const Point2 p = t.service.field_position((ix + 0.5) / 8, (iy + 0.5) / 6);
      const Point2 q = r.positions_A[iy * 8 + ix];
      err = std::max(err, std::hypot(p.x - q.x, p.y - q.y));
    }
  EXPECT_LT(err, 1e-9) << "pixel (ix, iy) is at fraction ((ix+0.5)/nx, (iy+0.5)/ny), Å";
}

TEST(MicroscopeService, StatusReportsTheDoseDelivered) {
  Twin t;
  const json before = t.result("get_microscope_status");
  EXPECT_EQ(before["total_electrons"], 0.0);
  EXPECT_EQ(before["status"], "Idle");
  t.result("acquire_image", kSmallScan);
  const json after = t.result("get_microscope_status");
  // 256 positions × I·t/e with I = 20 pA (the session default) and t = 2 µs.
  const double expected = 256 * 20e-12 * 2e-6 / 1.602176634e-19;
  EXPECT_NEAR(after["total_electrons"].get<double>(), expected, 1e-9 * expected);
  EXPECT_NEAR(after["beam_current"].get<double>(), 20e-12, 1e-24);
  EXPECT_NEAR(after["mean_dose"].get<double>(), expected / (15.62 * 15.62), 1e-6 * expected);
  EXPECT_GT(after["max_dose"].get<double>(), after["mean_dose"].get<double>());
  const json some = t.result("get_microscope_status", {{"parameters", {"total_electrons", "vacuum"}}});
  EXPECT_EQ(some.size(), 2u);
  EXPECT_EQ(t.error("get_microscope_status", {{"parameters", {"pressure"}}}), rpc::kInvalidParams);
  const json native = t.result("stemtwin.status");
  EXPECT_NEAR(native["total_electrons"].get<double>(), expected, 1e-9 * expected);
  const json dm = t.result("stemtwin.dose_map", {{"pixel_A", 1.0}});
  const auto bytes = unbase64(dm["dose_e_per_A2"]["__ndarray_b64__"].get<std::string>());
  ASSERT_EQ(bytes.size(), dm["dose_e_per_A2"]["shape"][0].get<std::size_t>() * dm["dose_e_per_A2"]["shape"][1].get<std::size_t>() * 4);
  double total = 0;
  for (std::size_t i = 0; i < bytes.size(); i += 4) {
    float f;
    std::memcpy(&f, &bytes[i], 4);
    total += f;  // e/Å² over 1 Å² pixels
  }
  EXPECT_NEAR(total, expected, 1e-5 * expected);
}

TEST(MicroscopeService, SpectroscopyAberrationsAndNativeMethods) {
  Twin t;
  std::string msg;
  EXPECT_EQ(t.error("acquire_spectrum", {{"device", "super_x"}}, &msg), rpc::kServerError);
  EXPECT_NE(msg.find("not simulated"), std::string::npos) << msg;
  EXPECT_EQ(t.error("acquire_spectrum", {{"device", "scan"}}), rpc::kInvalidParams);
  EXPECT_EQ(t.error("acquire_spectrum_points", {{"device", "super_x"}, {"points", {{0.1, 0.2}}}}), rpc::kServerError);
  const json o = t.result("stemtwin.set_optics", {{"defocus_A", 30}, {"aberrations", {{"Cs", 1e4}, {"C12", 5}}}});
  EXPECT_EQ(o["aberrations_A_rad"]["C30"], 1e4);
  EXPECT_EQ(t.error("stemtwin.set_optics", {{"aberrations", {{"C99", 1}}}}), rpc::kInvalidParams);
  const json corr = t.result("aberration_correction", {{"order", 3}});
  EXPECT_EQ(corr["aberrations"]["C30"], 0.0);
  EXPECT_EQ(corr["aberrations"]["C12"], 0.0);
  EXPECT_NEAR(t.microscope.optics().probe.aberrations.get("defocus"), 30, 1e-12) << "defocus is kept";
  EXPECT_EQ(t.error("aberration_correction", {{"order", 9}}), rpc::kInvalidParams);
  const json s = t.result("stemtwin.scan", {{"nx", 8}, {"ny", 8}, {"fov_x_A", 5}, {"fov_y_A", 5}, {"detectors", {"BF"}}, {"clean", true}});
  EXPECT_EQ(s["images"]["BF"]["shape"], json({8, 8}));
  EXPECT_EQ(unbase64(s["clean"]["BF"]["__ndarray_b64__"].get<std::string>()).size(), 64u * 4u);
  EXPECT_EQ(t.error("stemtwin.scan", {{"nx", 100}, {"ny", 100}}), rpc::kInvalidParams);
  const json p = t.result("stemtwin.probe", {{"x_A", 1.0}, {"y_A", 1.0}, {"dwell_us", 100}});
  EXPECT_EQ(p["position_A"], json({1.0, 1.0}));
  EXPECT_EQ(p["pattern"]["dtype"], "float32");
  const json methods = t.result("stemtwin.methods");
  EXPECT_GE(methods.size(), 20u);
  const json mv = t.result("stemtwin.move_stage", {{"x_A", 2.0}, {"relative", true}});
  EXPECT_NEAR(mv["x_A"].get<double>(), 15.62 / 2 + 2.0, 1e-9);
}

TEST(MicroscopeService, ConcurrentClientsShareOneSessionSafely) {
  Twin t;
  std::vector<std::future<json>> f;
  for (int i = 0; i < 3; ++i)
    f.push_back(std::async(std::launch::async, [&] { return call(t.port(), "acquire_image", kSmallScan); }));
  f.push_back(std::async(std::launch::async, [&] { return call(t.port(), "get_stage"); }));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(f[i].get()["result"][1], json({16, 16}));
  EXPECT_EQ(f[3].get()["result"].size(), 5u);
  EXPECT_EQ(t.microscope.status().calls, 3u);
}

TEST(MicroscopeService, PythonDefectHuntClientRunsAgainstTheServer) {
  if (!std::filesystem::exists("/usr/bin/python3"))
    GTEST_SKIP() << "/usr/bin/python3 is absent: the stdlib-only example client cannot run here";
  Twin t;
  const std::string out = std::string(STEMTWIN_BINARY_DIR) + "/test_server_client.log";
  const std::string cmd = "/usr/bin/python3 " + std::string(STEMTWIN_SOURCE_DIR) +
                          "/examples/defect_hunt_client.py --quick --port " + std::to_string(t.port()) + " > " + out +
                          " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream log(out);
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("dose:"), std::string::npos) << text;
  EXPECT_GE(t.microscope.status().calls, 3u);  // overview, 2-frame stack, pattern
}

TEST(Serve, CmdServeListensAnswersAndStopsOnSigterm) {
  ServeOptions o;
  o.port = 0;
  std::promise<int> port;
  o.on_listening = [&](int p) { port.set_value(p); };
  std::ostringstream log;
  auto served = std::async(std::launch::async, [&] { return cmd_serve(o, log); });
  auto pf = port.get_future();
  ASSERT_EQ(pf.wait_for(std::chrono::seconds(60)), std::future_status::ready) << "cmd_serve never listened";
  const int p = pf.get();
  // A reply proves run() is serving (and has installed its SIGTERM handler).
  EXPECT_EQ(call(p, "get_detectors")["result"].size(), 4u);
  const json st = call(p, "stemtwin.status")["result"];
  EXPECT_NEAR(st["cell_A"][0].get<double>(), 12 * 3.905, 1e-9);  // the default specimen
  const auto t0 = Clock::now();
  std::raise(SIGTERM);
  ASSERT_EQ(served.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "SIGTERM did not stop the server";
  EXPECT_EQ(served.get(), 0) << log.str();
  EXPECT_LT(seconds_since(t0), 2.0);
  EXPECT_NE(log.str().find("atoms"), std::string::npos);
}

TEST(Serve, CmdServeReportsAMissingStructureFile) {
  ServeOptions o;
  o.port = 0;
  o.structure = "/nonexistent/structure.cif";
  std::ostringstream log;
  EXPECT_EQ(cmd_serve(o, log), 1);
  EXPECT_NE(log.str().find("structure.cif"), std::string::npos) << log.str();
}

TEST(Serve, CmdServeSetsTheSessionUpFromAScenario) {
  ServeOptions o;
  o.port = 0;
  o.scenario = std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/quickstart.yaml";
  std::promise<int> port;
  o.on_listening = [&](int p) { port.set_value(p); };
  std::ostringstream log;
  auto served = std::async(std::launch::async, [&] { return cmd_serve(o, log); });
  auto pf = port.get_future();
  ASSERT_EQ(pf.wait_for(std::chrono::seconds(60)), std::future_status::ready) << log.str();
  const int p = pf.get();
  const json st = call(p, "stemtwin.status")["result"];
  EXPECT_EQ(st["optics"]["energy_eV"], 200e3);
  EXPECT_EQ(st["optics"]["current_pA"], 30.0);  // scenarios/quickstart.yaml: current 30 pA
  EXPECT_EQ(st["scan"]["nx"], 16);                       // 3.905 Å in 0.25 Å steps, end excluded
  EXPECT_NEAR(st["scan"]["fov_x_A"].get<double>(), 4.0, 1e-12);
  EXPECT_NEAR(st["cell_A"][0].get<double>(), 2 * 3.905, 1e-9);  // repeat [2, 2, ...]
  EXPECT_EQ(st["detectors"].size(), 3u);                 // haadf, bf, abf from the scenario
  // (No acquisition here: 4 phonon configurations on a 40 Å window take tens of seconds.)
  EXPECT_EQ(call(p, "get_device_settings", {{"device", "scan"}})["result"]["size"], 16);
  std::raise(SIGTERM);
  ASSERT_EQ(served.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(served.get(), 0) << log.str();
}

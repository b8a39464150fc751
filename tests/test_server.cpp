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
  /// The next response frame parsed as JSON; null JSON on timeout or close.
  json read() {
    std::string payload;
    while (!parser_.next(payload)) {
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return json();
      parser_.feed(buf, static_cast<std::size_t>(n));
    }
    return json::parse(payload);
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

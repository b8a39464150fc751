#include "stemtwin/session/json_rpc.hpp"

#include <algorithm>
#include <vector>

namespace stemtwin {

namespace rpc {
namespace {
thread_local const std::function<bool()>* t_caller_gone = nullptr;
}  // namespace

bool caller_gone() { return t_caller_gone && *t_caller_gone && (*t_caller_gone)(); }

CallerWatch::CallerWatch(std::function<bool()> gone) : gone_(std::move(gone)), previous_(t_caller_gone) { t_caller_gone = &gone_; }
CallerWatch::~CallerWatch() { t_caller_gone = previous_; }
}  // namespace rpc


using nlohmann::json;

namespace {

json error_object(const json& id, int code, const std::string& message) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

// nlohmann's dump throws on invalid UTF-8 by default; replace instead so that an error
// message quoting client bytes can always be sent.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Client text quoted in messages (keys, tokens, method names) is cut to this many bytes.
constexpr std::size_t kQuotedBytes = 80;

/// Replays a text that failed to parse through nlohmann's SAX interface to say where: the
/// byte offset and the path ("params.points_A[0][1]") of the value being read, and why.
class ParseErrorLocator final : public nlohmann::json_sax<json> {
 public:
  std::string message() const {
    std::string out = "parse error at byte ";
    out += std::to_string(position_);
    if (const std::string p = path(); !p.empty()) {
      out += " in \"";
      out += p;
      out += '"';
    }
    out += ": ";
    out += reason_;
    return out;
  }

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return open(false); }
  bool key(string_t& k) override {
    if (!stack_.empty()) stack_.back().key = k;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string& last_token, const nlohmann::detail::exception& e) override {
    position_ = position;
    // nlohmann's text, less its "[json.exception…] parse error at line…, column…: " prefix.
    std::string what = e.what();
    if (const auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    if (what.rfind("parse error", 0) == 0)
      if (const auto p = what.find(": "); p != std::string::npos) what = what.substr(p + 2);
    if (const auto p = what.find("; last read"); p != std::string::npos) what.resize(p);
    reason_ = what + " (last read: '" + printable_excerpt(last_token, kQuotedBytes) + "')";
    if (!last_token.empty() && (last_token.back() == 'N' || last_token.back() == 'I'))
      reason_ += "; NaN and Infinity are not JSON numbers";
    return false;
  }

 private:
  struct Level {
    bool array = false;
    std::size_t index = 0;
    std::string key;
  };
  bool value() {
    if (!stack_.empty() && stack_.back().array) ++stack_.back().index;
    return true;
  }
  bool open(bool array) {
    stack_.push_back({array, 0, {}});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return value();
  }
  std::string path() const {
    std::string p;
    for (const Level& l : stack_) {
      if (l.array) {
        p += '[';
        p += std::to_string(l.index);
        p += ']';
      } else if (!l.key.empty()) {
        if (!p.empty()) p += '.';
        p += printable_excerpt(l.key, kQuotedBytes);
      }
    }
    return p;
  }
  std::vector<Level> stack_;
  std::size_t position_ = 0;
  std::string reason_ = "not valid JSON";
};

std::string parse_error_message(std::string_view text) {
  ParseErrorLocator locator;
  try {
    json::sax_parse(text.begin(), text.end(), &locator);
  } catch (const std::exception&) {
    // the locator has what it could gather
  }
  return locator.message();
}

}  // namespace

std::string printable_excerpt(std::string_view text, std::size_t max_bytes) {
  std::string out;
  const std::size_t n = std::min(text.size(), max_bytes);
  out.reserve(n + 16);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > n) out += "…(+" + std::to_string(text.size() - n) + " bytes)";
  return out;
}

std::size_t json_nesting_depth(std::string_view text, std::size_t limit) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

void RpcDispatcher::add(const std::string& method, std::vector<std::string> positional, Handler handler,
                        std::string summary) {
  methods_[method] = Entry{std::move(positional), std::move(handler), std::move(summary)};
}

std::vector<std::pair<std::string, std::string>> RpcDispatcher::methods() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, e] : methods_) out.emplace_back(name, e.summary);
  return out;
}

std::string RpcDispatcher::error_response(int code, const std::string& message) {
  return dump(error_object(nullptr, code, message));
}

std::optional<json> RpcDispatcher::handle_one(const json& request) const {
  if (!request.is_object()) return error_object(nullptr, rpc::kInvalidRequest, "a request must be a JSON object");
  // The id decides whether we answer; a malformed id is answered with id null.
  const bool notification = !request.contains("id");
  json id = nullptr;
  if (!notification) {
    const json& rid = request["id"];
    if (!(rid.is_null() || rid.is_string() || rid.is_number()))
      return error_object(nullptr, rpc::kInvalidRequest, "\"id\" must be a string, a number or null");
    id = rid;
  }
  auto fail = [&](int code, const std::string& message) -> std::optional<json> {
    if (notification) return std::nullopt;
    return error_object(id, code, message);
  };
  if (request.contains("jsonrpc") && request["jsonrpc"] != "2.0")
    return fail(rpc::kInvalidRequest, "\"jsonrpc\" must be \"2.0\"");
  if (!request.contains("method") || !request["method"].is_string())
    return fail(rpc::kInvalidRequest, "\"method\" must be a string");
  const std::string method = request["method"].get<std::string>();
  json params = json::object();
  if (request.contains("params")) {
    const json& p = request["params"];
    if (p.is_null()) {
      // treated as absent
    } else if (!p.is_object() && !p.is_array()) {
      return fail(rpc::kInvalidRequest, "\"params\" must be an object or an array");
    } else {
      params = p;
    }
  }
  const auto it = methods_.find(method);
  if (it == methods_.end()) return fail(rpc::kMethodNotFound, "method not found: " + printable_excerpt(method, kQuotedBytes));
  const Entry& e = it->second;
  if (params.is_array()) {
    if (params.size() > e.positional.size())
      return fail(rpc::kInvalidParams, method + " takes at most " + std::to_string(e.positional.size()) +
                                           " positional parameters, got " + std::to_string(params.size()));
    json named = json::object();
    for (std::size_t i = 0; i < params.size(); ++i) named[e.positional[i]] = params[i];
    params = std::move(named);
  }
  try {
    json result = e.handler(params);
    if (notification) return std::nullopt;
    return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
  } catch (const RpcError& err) {
    return fail(err.code(), err.what());
  } catch (const json::exception& err) {
    return fail(rpc::kInvalidParams, method + ": bad parameter type (" + std::string(err.what()) + ")");
  } catch (const std::invalid_argument& err) {
    return fail(rpc::kInvalidParams, method + ": " + err.what());
  } catch (const std::exception& err) {
    return fail(rpc::kServerError, method + ": " + err.what());
  } catch (...) {
    return fail(rpc::kInternalError, method + ": internal error");
  }
}

std::optional<std::string> RpcDispatcher::handle(std::string_view request) const {
  try {
    if (json_nesting_depth(request, rpc::kMaxDepth) > rpc::kMaxDepth)
      return error_response(rpc::kParseError,
                            "request nested deeper than " + std::to_string(rpc::kMaxDepth) + " levels refused");
    json parsed = json::parse(request.begin(), request.end(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return error_response(rpc::kParseError, parse_error_message(request));
    if (parsed.is_array()) {
      if (parsed.empty()) return error_response(rpc::kInvalidRequest, "empty batch");
      if (parsed.size() > rpc::kMaxBatch)
        return error_response(rpc::kInvalidRequest, "batch of more than " + std::to_string(rpc::kMaxBatch) +
                                                        " requests refused");
      json responses = json::array();
      for (const json& r : parsed)
        if (auto resp = handle_one(r)) responses.push_back(std::move(*resp));
      if (responses.empty()) return std::nullopt;
      return dump(responses);
    }
    auto resp = handle_one(parsed);
    if (!resp) return std::nullopt;
    return dump(*resp);
  } catch (const std::exception& e) {
    return error_response(rpc::kInternalError, std::string("internal error: ") + e.what());
  } catch (...) {
    return error_response(rpc::kInternalError, "internal error");
  }
}

}  // namespace stemtwin

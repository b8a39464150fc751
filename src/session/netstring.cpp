#include "stemtwin/session/netstring.hpp"

#include <algorithm>
#include <cstdio>

namespace stemtwin::netstring {

namespace {
constexpr std::size_t kMaxDigits = 20;  // enough for any size_t

std::string printable(char c) {
  if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(c));
  return buf;
}
}  // namespace

std::string encode(std::string_view payload) {
  std::string out = std::to_string(payload.size());
  out.reserve(out.size() + payload.size() + 2);
  out += ':';
  out.append(payload.data(), payload.size());
  out += ',';
  return out;
}

std::string decode(std::string_view frame, std::size_t max_payload) {
  Parser p(max_payload);
  p.feed(frame);
  std::string out;
  if (!p.next(out) || !p.idle() || p.ready() != 0)
    throw NetstringError(p.ready() != 0 ? "netstring: more than one frame" : "netstring: incomplete frame");
  return out;
}

void Parser::fail(const std::string& why) {
  error_ = "netstring: " + why;
  throw NetstringError(error_);
}

void Parser::feed(const char* data, std::size_t n) {
  if (failed()) throw NetstringError(error_);
  std::size_t i = 0;
  while (i < n) {
    switch (state_) {
      case State::Length: {
        const char c = data[i++];
        if (c >= '0' && c <= '9') {
          if (leading_zero_) fail("length has a leading zero");
          if (digits_ == kMaxDigits) fail("length prefix too long");
          const std::size_t d = static_cast<std::size_t>(c - '0');
          if (length_ > max_payload_ / 10 || length_ * 10 + d > max_payload_)
            fail("frame of more than " + std::to_string(max_payload_) + " bytes refused");
          length_ = length_ * 10 + d;
          if (digits_ == 0 && c == '0') leading_zero_ = true;
          ++digits_;
        } else if (c == ':') {
          if (digits_ == 0) fail("missing length before ':'");
          state_ = length_ == 0 ? State::Comma : State::Payload;
          current_.clear();
          current_.reserve(length_);
        } else {
          fail("bad character " + printable(c) + (digits_ == 0 ? " where a length was expected" : " in length"));
        }
        break;
      }
      case State::Payload: {
        const std::size_t take = std::min(n - i, length_ - current_.size());
        current_.append(data + i, take);
        i += take;
        if (current_.size() == length_) state_ = State::Comma;
        break;
      }
      case State::Comma: {
        const char c = data[i++];
        if (c != ',') fail("expected ',' after " + std::to_string(length_) + " payload bytes, got " + printable(c));
        done_.push_back(std::move(current_));
        current_.clear();
        state_ = State::Length;
        length_ = 0;
        digits_ = 0;
        leading_zero_ = false;
        break;
      }
    }
  }
}

bool Parser::next(std::string& out) {
  if (done_.empty()) return false;
  out = std::move(done_.front());
  done_.pop_front();
  return true;
}

}  // namespace stemtwin::netstring

#pragma once
// Internal to src/scenario/: the YAML size and depth bounds the parser checks (parser.cpp's
// Parser::parse) before it loads a document.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stemtwin::scenario_parse {

// YAML bounds: before the document is loaded into a node tree (which shares aliased
// nodes) and walked (which expands them), one pass over yaml-cpp's events computes the
// expanded size and depth of every anchor, so a self-referencing alias (a cycle that would
// recurse forever) or an alias "billion laughs" (10^9 nodes from a few lines) is refused
// with its line. Limits: a complete scenario has a few hundred nodes nested at most ~8
// deep; 10^5 nodes (long choice/sweep lists included) parse in milliseconds and a few MB,
// and 64 levels keep every recursive walk of the tree far from the stack's end.

constexpr std::uint64_t kMaxYamlNodes = 100000;
constexpr std::size_t kMaxYamlDepth = 64;

struct YamlLimitError {
  YAML::Mark mark;
  std::string message;
};

class YamlBounds : public YAML::EventHandler {
 public:
  int documents = 0;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents > 1)
      throw YamlLimitError{mark, "a second YAML document ('---'): a scenario file holds exactly one document"};
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string&) override {
    leaf(mark, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    const auto it = anchors_.find(anchor);
    if (it == anchors_.end())
      throw YamlLimitError{mark, "alias refers to its own enclosing anchor (a cycle): the tree would be infinite"};
    add(mark, it->second.nodes, it->second.depth);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Size {
    std::uint64_t nodes = 1;  // expanded node count, ≤ kMaxYamlNodes (checked on every addition)
    std::size_t depth = 1;
  };
  struct Open {
    YAML::Mark mark;
    YAML::anchor_t anchor;
    Size size;
  };
  std::vector<Open> stack_;
  std::map<YAML::anchor_t, Size> anchors_;  // complete anchors only
  std::uint64_t document_nodes_ = 0;

  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) anchors_[anchor] = Size{};
    add(mark, 1, 1);
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (stack_.size() + 1 > kMaxYamlDepth)
      throw YamlLimitError{mark, "nesting deeper than " + std::to_string(kMaxYamlDepth) + " levels"};
    stack_.push_back(Open{mark, anchor, Size{}});
  }
  void close() {
    const Open o = stack_.back();
    stack_.pop_back();
    if (o.anchor != YAML::NullAnchor) anchors_[o.anchor] = o.size;
    add(o.mark, o.size.nodes, o.size.depth);
  }
  void add(const YAML::Mark& mark, std::uint64_t nodes, std::size_t depth) {
    // Both terms are ≤ kMaxYamlNodes, so the sum cannot overflow.
    std::uint64_t& total = stack_.empty() ? document_nodes_ : stack_.back().size.nodes;
    total += nodes;
    if (total > kMaxYamlNodes)
      throw YamlLimitError{mark, "the document expands to more than " + std::to_string(kMaxYamlNodes) +
                                     " nodes (aliases are expanded; a scenario needs a few hundred)"};
    if (stack_.size() + depth > kMaxYamlDepth)
      throw YamlLimitError{mark, "nesting deeper than " + std::to_string(kMaxYamlDepth) + " levels (aliases expanded)"};
    if (!stack_.empty()) stack_.back().size.depth = std::max(stack_.back().size.depth, depth + 1);
  }
};

}  // namespace stemtwin::scenario_parse

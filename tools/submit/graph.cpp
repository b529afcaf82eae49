// Reads cosched-submit's JSON job graph: syntax, duplicate keys, field types and ranges,
// names that refer to jobs and entities, and the push order of dependencies.
#include "submit/graph.hpp"
#include "submit/graph_text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "cosched/error.hpp"

namespace cosched::submit {
namespace {

// Ordered so that "the first unknown field" is the first one in the file, not in
// alphabetical order.
using json = nlohmann::ordered_json;

// Times are summed by the runner (start + duration, start + timeout); 1e15 us (about
// 31 years) keeps every such sum far below 2^64.
constexpr std::uint64_t max_integer = 1'000'000'000'000'000;
constexpr std::uint64_t max_uint32 = std::numeric_limits<std::uint32_t>::max();
// Every ring is a simulated device (a thread in real time): far more than any GPU
// has, and little enough that a typo cannot exhaust the machine.
constexpr std::uint64_t max_rings = 1024;

// How deeply arrays and objects may nest. A graph needs 4 levels (the document, "jobs",
// a job, its "deps"); the bound leaves room and stops a document nested a hundred
// thousand levels deep before anything recursive (nlohmann copies a value recursively
// when an object grows) can overflow the stack.
constexpr std::size_t max_nesting = 64;

}  // namespace

using detail::quote;
using detail::too_large;

namespace {

/// What a value is, for "got ..." in a message. Containers are never dumped: they can
/// be huge or nested deeply.
std::string describe(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      return text.empty() ? "an empty string" : "the string " + quote(text);
    }
    case json::value_t::number_integer:
      return std::to_string(value.get<std::int64_t>());
    case json::value_t::number_unsigned:
      return std::to_string(value.get<std::uint64_t>());
    case json::value_t::number_float:
      return value.dump();
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::binary:
    case json::value_t::discarded:
      break;
  }
  return "an unsupported value";
}

/// A key name as a step of a path: bare when it is a plain identifier.
std::string path_key(std::string_view key) {
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
  return plain ? std::string(key) : "[" + quote(key) + "]";
}

std::string indexed(std::string_view collection, std::size_t index) {
  return std::string(collection) + "[" + std::to_string(index) + "]";
}

/// 1-based line and column (in characters, not bytes) of the byte that nlohmann stopped
/// at. nlohmann reports a 1-based count of bytes read, where reaching the end of the
/// input counts as one more byte.
std::pair<std::size_t, std::size_t> line_and_column(std::string_view text, std::size_t bytes_read) {
  const std::size_t index = bytes_read == 0 ? 0 : std::min(bytes_read - 1, text.size());
  std::size_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < index; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  std::size_t column = 1;
  for (std::size_t i = line_start; i < index; ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++column;
  }
  return {line, column};
}

/// nlohmann's reason without its "[json.exception...] parse error at line L, column C: "
/// prefix: the position is computed by line_and_column instead.
std::string nlohmann_reason(std::string_view what) {
  if (what.starts_with("[")) {
    if (const auto end = what.find("] "); end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  if (what.starts_with("parse error")) {
    if (const auto colon = what.find(": "); colon != std::string_view::npos) what.remove_prefix(colon + 2);
  }
  return std::string(what);
}

/// One step from a container to a value inside it.
struct path_step {
  std::string key;        ///< for an object member
  std::size_t index = 0;  ///< for an array element
  bool is_index = false;
};

/// A SAX pass over the text before the tree is built: it checks the syntax, stops at
/// nesting deeper than max_nesting, and finds the first key that appears twice in one
/// object (nlohmann's tree keeps the last value silently). A SAX handler rather than
/// nlohmann's parser callback: nlohmann 3.11.2's callback parser rescans the enclosing
/// array after every object, which takes 30 s for 200000 jobs. A SAX handler is also told the position of
/// every syntax error, even "number overflow" (out_of_range.406), which the tree parser throws without one.
/// SAX reports no position for keys, so a duplicate is located by its path.
class syntax_checker {
 public:
  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(json::number_integer_t) { return value(); }
  bool number_unsigned(json::number_unsigned_t) { return value(); }
  bool number_float(json::number_float_t, const json::string_t&) { return value(); }
  bool string(json::string_t&) { return value(); }
  bool binary(json::binary_t&) { return value(); }
  bool start_object(std::size_t) { return open(true); }
  bool start_array(std::size_t) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& key) {
    container& top = open_.back();
    if (!top.keys_.insert(key).second && !duplicate_) record_duplicate(key);
    top.last_key_ = key;
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const json::exception& error) {
    bytes_read_ = position;
    reason_ = nlohmann_reason(error.what());
    return false;
  }

  /// For a syntax error: nlohmann's count of bytes read, and its reason.
  std::size_t bytes_read() const { return bytes_read_; }
  const std::string& reason() const { return reason_; }

  /// Whether the pass stopped at an array or object nested deeper than max_nesting.
  bool too_deep() const { return too_deep_; }

  /// The containers leading to the first duplicate, then the duplicated key.
  const std::optional<std::pair<std::vector<path_step>, std::string>>& duplicate() const {
    return duplicate_;
  }

 private:
  struct container {
    bool is_object_ = false;
    std::unordered_set<std::string> keys_;
    std::size_t next_index_ = 0;
    std::string last_key_;
    path_step step_;  ///< how the enclosing container reaches this one
  };

  bool value() {
    if (!open_.empty() && !open_.back().is_object_) ++open_.back().next_index_;
    return true;
  }

  bool open(bool is_object) {
    if (open_.size() == max_nesting) {
      too_deep_ = true;
      return false;
    }
    path_step step;
    if (!open_.empty()) {
      container& parent = open_.back();
      step = parent.is_object_ ? path_step{parent.last_key_, 0, false}
                               : path_step{{}, parent.next_index_++, true};
    }
    open_.push_back({is_object, {}, 0, {}, std::move(step)});
    return true;
  }

  bool close() {
    open_.pop_back();
    return true;
  }

  void record_duplicate(const std::string& key) {
    std::vector<path_step> path;
    // The first container is the document itself, reached by no step.
    for (std::size_t i = 1; i < open_.size(); ++i) path.push_back(open_[i].step_);
    duplicate_.emplace(std::move(path), key);
  }

  std::size_t bytes_read_ = 0;
  std::string reason_;
  bool too_deep_ = false;
  std::vector<container> open_;
  std::optional<std::pair<std::vector<path_step>, std::string>> duplicate_;
};

/// The index of the '[' or '{' that opens the first container nested deeper than
/// max_nesting, in text that is valid JSON up to there (the SAX pass stopped at it).
std::size_t too_deep_index(std::string_view text) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_nesting) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return text.size();
}

enum class wait_kind { dependency, entity_order };

/// A job in a dependency cycle and how it waits for the next job of the cycle.
struct cycle_link {
  std::size_t job;
  wait_kind kind;
};

struct wait_edge {
  std::size_t job;
  wait_kind kind;
};

/// What each job waits for: its deps in deps order, then the job pushed just before it
/// on its entity (the entity's FIFO order).
std::vector<std::vector<wait_edge>> waits_of(const graph& g, const std::vector<std::size_t>& order) {
  std::vector<std::vector<wait_edge>> waits(g.jobs.size());
  for (std::size_t job = 0; job < g.jobs.size(); ++job) {
    for (const std::size_t dep : g.jobs[job].deps) waits[job].push_back({dep, wait_kind::dependency});
  }
  std::vector<std::optional<std::size_t>> last_pushed(g.entities.size());
  for (const std::size_t job : order) {
    auto& last = last_pushed[g.jobs[job].entity];
    if (last) waits[job].push_back({*last, wait_kind::entity_order});
    last = job;
  }
  return waits;
}

/// The first cycle found by a depth-first search from the jobs in file order. Iterative:
/// a chain of a million jobs must not overflow the stack.
std::optional<std::vector<cycle_link>> find_cycle(const std::vector<std::vector<wait_edge>>& waits) {
  enum class mark : unsigned char { unvisited, on_path, done };
  struct visit {
    std::size_t job;
    std::size_t next_edge;
  };
  std::vector<mark> marks(waits.size(), mark::unvisited);
  std::vector<visit> path;
  for (std::size_t start = 0; start < waits.size(); ++start) {
    if (marks[start] != mark::unvisited) continue;
    marks[start] = mark::on_path;
    path.push_back({start, 0});
    while (!path.empty()) {
      visit& top = path.back();
      if (top.next_edge == waits[top.job].size()) {
        marks[top.job] = mark::done;
        path.pop_back();
        continue;
      }
      const wait_edge& edge = waits[top.job][top.next_edge++];
      if (marks[edge.job] == mark::on_path) {
        auto first =
            std::find_if(path.begin(), path.end(), [&](const visit& v) { return v.job == edge.job; });
        std::vector<cycle_link> cycle;
        for (auto it = first; it != path.end(); ++it) {
          // next_edge was advanced past the edge that led to the following job.
          cycle.push_back({it->job, waits[it->job][it->next_edge - 1].kind});
        }
        return cycle;
      }
      if (marks[edge.job] == mark::unvisited) {
        marks[edge.job] = mark::on_path;
        path.push_back({edge.job, 0});
      }
    }
  }
  return std::nullopt;
}

class graph_reader {
 public:
  explicit graph_reader(std::string_view file_name) : file_name_(file_name) {}

  graph read(std::string_view text) {
    const json root = parse_json(text);
    if (!root.is_object()) fail("top level", "must be a JSON object, got " + describe(root));
    constexpr std::array<std::string_view, 4> top_fields = {"scheduler", "entities", "jobs", "actions"};
    reject_unknown_fields(root, "top level", top_fields);

    if (const json* scheduler = find(root, "scheduler")) {
      read_scheduler(require_object(*scheduler, "top level", "scheduler"));
    }
    read_entities(require_array(require(root, "top level", "entities"), "top level", "entities"));
    read_jobs(require_array(require(root, "top level", "jobs"), "top level", "jobs"));
    if (const json* actions = find(root, "actions")) {
      read_actions(require_array(*actions, "top level", "actions"));
    }
    check_dependencies();
    check_run_length(graph_, file_name_);
    return std::move(graph_);
  }

 private:
  [[noreturn]] void fail(std::string_view place, std::string_view problem) const {
    std::string message = printable(file_name_);
    message += ": ";
    if (!place.empty()) {
      message += place;
      message += ": ";
    }
    message += problem;
    throw input_error(message);
  }

  [[noreturn]] void fail_field(std::string_view place, std::string_view field,
                               std::string_view problem) const {
    fail(place, "field " + quote(field) + ": " + std::string(problem));
  }

  json parse_json(std::string_view text) const {
    if (text.size() > max_graph_bytes) fail("", too_large());
    // nlohmann takes a NUL byte for the end of the input and would ignore the rest:
    // the text is checked up to the first one, and the NUL itself is an error unless
    // the text before it is.
    const std::size_t nul = text.find('\0');
    const std::string_view before_nul = text.substr(0, nul);
    syntax_checker checker;
    if (!json::sax_parse(before_nul.data(), before_nul.data() + before_nul.size(), &checker) &&
        (checker.too_deep() || nul == std::string_view::npos || checker.bytes_read() <= nul)) {
      if (checker.too_deep()) {
        const auto [line, column] = line_and_column(text, too_deep_index(text) + 1);
        fail("line " + std::to_string(line) + ", column " + std::to_string(column),
             "arrays and objects nested deeper than " + std::to_string(max_nesting) +
                 " levels (a graph needs 4)");
      }
      const auto [line, column] = line_and_column(text, checker.bytes_read());
      fail("line " + std::to_string(line) + ", column " + std::to_string(column),
           "malformed JSON: " + printable(checker.reason()));
    }
    if (nul != std::string_view::npos) {
      const auto [line, column] = line_and_column(text, nul + 1);
      fail("line " + std::to_string(line) + ", column " + std::to_string(column),
           "malformed JSON: a NUL byte, which JSON text cannot contain");
    }
    const char* const first = text.data();
    const char* const last = text.data() + text.size();
    json root;
    try {
      root = json::parse(first, last);
    } catch (const json::exception& error) {
      // Unreachable after the syntax check; kept so that no nlohmann error escapes.
      fail("", "malformed JSON: " + printable(nlohmann_reason(error.what())));
    }
    if (const auto& duplicate = checker.duplicate()) {
      fail(place_of(root, duplicate->first, duplicate->second), "duplicate key " + quote(duplicate->second));
    }
    return root;
  }

  /// The place of a container reached by `path` from the root, named like the places
  /// of other messages (`jobs[1] (id "b")`) when the path starts at a job or an entity.
  std::string place_of(const json& root, const std::vector<path_step>& path,
                       std::string_view duplicated_key) const {
    if (path.empty()) return "top level";
    std::string place;
    std::size_t next = 0;
    if (path.size() >= 2 && !path[0].is_index && path[1].is_index) {
      const std::string& collection = path[0].key;
      const bool in_job = collection == "jobs";
      if (in_job || collection == "entities") {
        const std::string_view identity = in_job ? "id" : "name";
        // The identity is unknown when it is the duplicated key itself.
        const json* element = path.size() == 2 && duplicated_key == identity
                                  ? nullptr
                                  : element_at(root, collection, path[1].index);
        const json* name = element && element->is_object() ? find(*element, identity) : nullptr;
        place = name && name->is_string() && !name->get_ref<const std::string&>().empty()
                    ? labelled(collection, path[1].index, identity, name->get_ref<const std::string&>())
                    : indexed(collection, path[1].index);
        next = 2;
      }
    }
    // Deeper steps follow the label as a path of their own: `jobs[0] (id "a"): deps[1]`.
    std::string rest;
    for (; next < path.size(); ++next) {
      if (path[next].is_index) {
        rest += "[" + std::to_string(path[next].index) + "]";
      } else {
        if (!rest.empty()) rest += '.';
        rest += path_key(path[next].key);
      }
    }
    if (place.empty()) return rest;
    return rest.empty() ? place : place + ": " + rest;
  }

  static const json* element_at(const json& root, const std::string& collection, std::size_t index) {
    const json* array = find(root, collection);
    if (!array || !array->is_array() || index >= array->size()) return nullptr;
    return &(*array)[index];
  }

  static std::string labelled(std::string_view collection, std::size_t index, std::string_view identity,
                              std::string_view name) {
    return indexed(collection, index) + " (" + std::string(identity) + " " + quote(name) + ")";
  }

  static const json* find(const json& object, std::string_view key) {
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
  }

  const json& require(const json& object, std::string_view place, std::string_view field) const {
    const json* value = find(object, field);
    if (!value) fail(place, "missing required field " + quote(field));
    return *value;
  }

  const json& require_object(const json& value, std::string_view place, std::string_view field) const {
    if (!value.is_object()) fail_field(place, field, "must be an object, got " + describe(value));
    return value;
  }

  const json& require_array(const json& value, std::string_view place, std::string_view field) const {
    if (!value.is_array()) fail_field(place, field, "must be an array, got " + describe(value));
    return value;
  }

  void reject_unknown_fields(const json& object, std::string_view place,
                             std::span<const std::string_view> known) const {
    for (auto it = object.begin(); it != object.end(); ++it) {
      if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
      std::string problem = "unknown field " + quote(it.key()) + "; known fields:";
      for (std::size_t i = 0; i < known.size(); ++i) {
        problem += i == 0 ? " " : ", ";
        problem += known[i];
      }
      fail(place, problem);
    }
  }

  std::uint64_t read_integer(const json& value, std::string_view place, std::string_view field,
                             std::uint64_t min, std::uint64_t max) const {
    std::optional<std::uint64_t> result;
    if (value.is_number_unsigned()) {
      result = value.get<std::uint64_t>();
    } else if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
      // "-0" is parsed as a signed zero.
      result = static_cast<std::uint64_t>(value.get<std::int64_t>());
    }
    if (!result || *result < min || *result > max) {
      fail_field(place, field,
                 "must be an integer between " + std::to_string(min) + " and " + std::to_string(max) +
                     ", got " + describe(value));
    }
    return *result;
  }

  const std::string& read_name(const json& value, std::string_view place, std::string_view field) const {
    if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
      fail_field(place, field, "must be a non-empty string, got " + describe(value));
    }
    return value.get_ref<const std::string&>();
  }

  template <typename Choice, std::size_t count>
  Choice read_choice(const json& value, std::string_view place, std::string_view field,
                     const std::array<std::pair<std::string_view, Choice>, count>& choices) const {
    if (value.is_string()) {
      const auto& text = value.get_ref<const std::string&>();
      for (const auto& [name, choice] : choices) {
        if (text == name) return choice;
      }
    }
    std::string problem = "must be one of";
    for (std::size_t i = 0; i < count; ++i) {
      problem += i == 0 ? " " : ", ";
      problem += quote(choices[i].first);
    }
    fail_field(place, field, problem + "; got " + describe(value));
  }

  void read_scheduler(const json& object) {
    constexpr std::string_view place = "scheduler";
    constexpr std::array<std::string_view, 6> fields = {"mode",   "credit_limit", "timeout_us",
                                                        "policy", "rings",        "pipeline"};
    reject_unknown_fields(object, place, fields);
    scheduler_spec& spec = graph_.scheduler;
    if (const json* mode = find(object, "mode")) {
      constexpr std::array<std::pair<std::string_view, ring_mode>, 2> modes = {
          {{"shared_ring", ring_mode::shared_ring}, {"ring_per_entity", ring_mode::ring_per_entity}}};
      spec.mode = read_choice(*mode, place, "mode", modes);
    }
    if (const json* limit = find(object, "credit_limit")) {
      spec.credit_limit =
          static_cast<std::uint32_t>(read_integer(*limit, place, "credit_limit", 1, max_uint32));
    }
    if (const json* timeout = find(object, "timeout_us")) {
      spec.timeout_us = read_integer(*timeout, place, "timeout_us", 1, max_integer);
    }
    if (const json* policy = find(object, "policy")) {
      constexpr std::array<std::pair<std::string_view, policy_kind>, 4> policies = {
          {{"fifo", policy_kind::fifo},
           {"rr", policy_kind::rr},
           {"fair", policy_kind::fair},
           {"deadline", policy_kind::deadline}}};
      spec.policy = read_choice(*policy, place, "policy", policies);
    }
    if (const json* pipeline = find(object, "pipeline")) {
      if (!pipeline->is_boolean())
        fail_field(place, "pipeline", "must be true or false, got " + describe(*pipeline));
      spec.pipeline = pipeline->get<bool>();
    }
    if (const json* rings = find(object, "rings")) {
      spec.rings = static_cast<std::uint32_t>(read_integer(*rings, place, "rings", 1, max_rings));
      // Several rings are several shared rings; per-entity rings are one per entity.
      if (spec.rings > 1 && spec.mode != ring_mode::shared_ring) {
        fail_field(place, "rings",
                   std::to_string(spec.rings) + " rings need mode \"shared_ring\", mode is " +
                       quote("ring_per_entity"));
      }
    }
  }

  /// A ring set (an entity's "rings", a set_rings action's): in shared_ring mode, a
  /// non-empty array of distinct ring indices below scheduler.rings, kept as written.
  std::vector<std::size_t> read_ring_set(const json& value, std::string_view place,
                                         std::string_view field) const {
    const scheduler_spec& scheduler = graph_.scheduler;
    if (scheduler.mode != ring_mode::shared_ring) {
      fail_field(place, field,
                 "ring affinity needs mode \"shared_ring\", mode is \"ring_per_entity\" (each "
                 "entity has its own ring)");
    }
    require_array(value, place, field);
    if (value.empty()) fail_field(place, field, "an empty ring set: name at least one ring");
    std::vector<std::size_t> rings;
    for (std::size_t i = 0; i < value.size(); ++i) {
      const json& item = value[i];
      const std::string element = indexed(field, i);
      std::optional<std::uint64_t> index;
      if (item.is_number_unsigned()) {
        index = item.get<std::uint64_t>();
      } else if (item.is_number_integer() && item.get<std::int64_t>() >= 0) {
        index = static_cast<std::uint64_t>(item.get<std::int64_t>());  // "-0" is a signed zero
      }
      if (!index || *index >= scheduler.rings) {
        fail_field(place, element,
                   "must be a ring index from 0 to " + std::to_string(scheduler.rings - 1) +
                       " (scheduler.rings is " + std::to_string(scheduler.rings) + "), got " +
                       describe(item));
      }
      const auto ring = static_cast<std::size_t>(*index);
      // A ring named twice is most likely a typo for another one.
      if (const auto first = std::find(rings.begin(), rings.end(), ring); first != rings.end()) {
        fail_field(place, element,
                   "ring " + std::to_string(ring) + " is named twice (first at " +
                       indexed(field, static_cast<std::size_t>(first - rings.begin())) + ")");
      }
      rings.push_back(ring);
    }
    return rings;
  }

  void read_entities(const json& array) {
    constexpr std::array<std::string_view, 3> fields = {"name", "priority", "rings"};
    for (std::size_t index = 0; index < array.size(); ++index) {
      const json& object = array[index];
      std::string place = indexed("entities", index);
      if (!object.is_object()) fail(place, "must be an object, got " + describe(object));
      entity_spec entity;
      entity.name = read_name(require(object, place, "name"), place, "name");
      place = labelled("entities", index, "name", entity.name);
      reject_unknown_fields(object, place, fields);
      const auto [first, inserted] = entity_index_.emplace(entity.name, index);
      if (!inserted) {
        fail_field(place, "name",
                   "duplicate entity " + quote(entity.name) + " (first at " +
                       indexed("entities", first->second) + ")");
      }
      if (const json* prio = find(object, "priority")) {
        constexpr std::array<std::pair<std::string_view, priority>, 4> priorities = {
            {{"kernel", priority::kernel},
             {"high", priority::high},
             {"normal", priority::normal},
             {"low", priority::low}}};
        entity.prio = read_choice(*prio, place, "priority", priorities);
      }
      if (const json* rings = find(object, "rings")) entity.rings = read_ring_set(*rings, place, "rings");
      graph_.entities.push_back(std::move(entity));
    }
  }

  void read_jobs(const json& array) {
    constexpr std::array<std::string_view, 8> fields = {
        "id", "entity", "duration_us", "deps", "credits", "submit_at_us", "fault", "deadline_us"};
    // Names are resolved once every id is known: a dep may name a job later in the file
    // (valid when that job is pushed earlier).
    dep_names_.resize(array.size());
    for (std::size_t index = 0; index < array.size(); ++index) {
      const json& object = array[index];
      std::string place = indexed("jobs", index);
      if (!object.is_object()) fail(place, "must be an object, got " + describe(object));
      job_spec job;
      job.id = read_name(require(object, place, "id"), place, "id");
      place = labelled("jobs", index, "id", job.id);
      reject_unknown_fields(object, place, fields);
      const auto [first, inserted] = job_index_.emplace(job.id, index);
      if (!inserted) {
        fail_field(
            place, "id",
            "duplicate job id " + quote(job.id) + " (first at " + indexed("jobs", first->second) + ")");
      }

      const std::string& entity = read_name(require(object, place, "entity"), place, "entity");
      const auto owner = entity_index_.find(entity);
      if (owner == entity_index_.end()) fail_field(place, "entity", "unknown entity " + quote(entity));
      job.entity = owner->second;

      if (const json* duration = find(object, "duration_us")) {
        job.duration_us = read_integer(*duration, place, "duration_us", 0, max_integer);
      }
      if (const json* deps = find(object, "deps")) {
        require_array(*deps, place, "deps");
        for (std::size_t i = 0; i < deps->size(); ++i) {
          const json& dep = (*deps)[i];
          if (!dep.is_string()) {
            fail_field(place, indexed("deps", i), "must be a string (a job id), got " + describe(dep));
          }
          dep_names_[index].push_back(dep.get_ref<const std::string&>());
        }
      }
      if (const json* credits = find(object, "credits")) {
        job.credits = static_cast<std::uint32_t>(read_integer(*credits, place, "credits", 1, max_uint32));
        if (job.credits > graph_.scheduler.credit_limit) {
          fail_field(place, "credits",
                     std::to_string(job.credits) + " exceeds scheduler.credit_limit " +
                         std::to_string(graph_.scheduler.credit_limit));
        }
      }
      if (const json* submit_at = find(object, "submit_at_us")) {
        job.submit_at_us = read_integer(*submit_at, place, "submit_at_us", 0, max_integer);
      }
      if (const json* fault = find(object, "fault")) job.fault = read_fault(*fault, place);
      if (const json* deadline = find(object, "deadline_us")) {
        job.deadline_us = read_integer(*deadline, place, "deadline_us", 0, max_integer);
      }
      job_places_.push_back(place);
      graph_.jobs.push_back(std::move(job));
    }

    for (std::size_t index = 0; index < graph_.jobs.size(); ++index) {
      for (const std::string& name : dep_names_[index]) {
        const auto dep = job_index_.find(name);
        if (dep == job_index_.end()) fail_field(job_places_[index], "deps", "unknown job " + quote(name));
        if (dep->second == index) fail_field(job_places_[index], "deps", "the job depends on itself");
        graph_.jobs[index].deps.push_back(dep->second);
      }
    }
  }

  fault_spec read_fault(const json& value, std::string_view place) const {
    constexpr std::string_view expected =
        "must be \"hang\", \"error:<ERRNO name>\", \"slow:<us>\" or \"throw:<message>\"; got ";
    if (!value.is_string()) fail_field(place, "fault", std::string(expected) + describe(value));
    fault_spec fault;
    fault.text = value.get_ref<const std::string&>();
    const std::string_view text = fault.text;
    constexpr std::string_view error_prefix = "error:";
    constexpr std::string_view slow_prefix = "slow:";
    if (text == "hang") {
      fault.kind = fault_kind::hang;
    } else if (text.starts_with(error_prefix)) {
      const std::string_view name = text.substr(error_prefix.size());
      fault.kind = fault_kind::error;
      fault.errno_value = cosched::errno_from_name(name);
      if (fault.errno_value == 0) {
        fail_field(place, "fault",
                   name.empty() ? "\"error:\" needs an errno name, e.g. \"error:EIO\""
                                : "unknown errno name " + quote(name) + " in " + quote(text));
      }
    } else if (text.starts_with(fault_spec::throw_prefix)) {
      fault.kind = fault_kind::body_throws;
    } else if (text.starts_with(slow_prefix)) {
      fault.kind = fault_kind::slow;
      const auto slow_us = parse_decimal(text.substr(slow_prefix.size()));
      if (!slow_us) {
        fail_field(place, "fault",
                   "in " + quote(text) + ", <us> must be a decimal integer between 0 and " +
                       std::to_string(max_integer));
      }
      fault.slow_us = *slow_us;
    } else {
      fail_field(place, "fault", std::string(expected) + describe(value));
    }
    return fault;
  }

  /// Digits only (no sign, no spaces, no suffix), at most max_integer.
  static std::optional<std::uint64_t> parse_decimal(std::string_view digits) {
    if (digits.empty()) return std::nullopt;
    std::uint64_t value = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      // value <= max_integer here, so this cannot overflow.
      value = value * 10 + static_cast<std::uint64_t>(c - '0');
      if (value > max_integer) return std::nullopt;
    }
    return value;
  }

  void read_actions(const json& array) {
    constexpr std::array<std::string_view, 4> fields = {"at_us", "kill", "set_rings", "rings"};
    for (std::size_t index = 0; index < array.size(); ++index) {
      const json& object = array[index];
      std::string place = indexed("actions", index);
      if (!object.is_object()) fail(place, "must be an object, got " + describe(object));
      reject_unknown_fields(object, place, fields);
      action_spec action;
      action.at_us = read_integer(require(object, place, "at_us"), place, "at_us", 0, max_integer);
      // Every action names exactly one verb: the field that holds its entity.
      const json* kill = find(object, "kill");
      const json* set_rings = find(object, "set_rings");
      if (!kill && !set_rings) fail(place, "no action: expected the field \"kill\" or \"set_rings\"");
      if (kill && set_rings) fail(place, "both \"kill\" and \"set_rings\": an action does one thing");
      action.kind = kill ? action_kind::kill : action_kind::set_rings;
      const std::string_view verb = kill ? "kill" : "set_rings";
      const std::string& entity = read_name(kill ? *kill : *set_rings, place, verb);
      const auto target = entity_index_.find(entity);
      if (target == entity_index_.end()) fail_field(place, verb, "unknown entity " + quote(entity));
      action.entity = target->second;
      const json* rings = find(object, "rings");
      if (action.kind == action_kind::kill) {
        if (rings) fail_field(place, "rings", "belongs to a \"set_rings\" action, not to \"kill\"");
      } else {
        place += " (set_rings " + quote(entity) + ")";
        action.rings = read_ring_set(require(object, place, "rings"), place, "rings");
      }
      graph_.actions.push_back(std::move(action));
    }
  }

  /// Cycles are looked for first: a cycle is always also a dependency on a job pushed
  /// later (the entity order only ever points back), and "cycle" is the better report.
  void check_dependencies() const {
    const std::vector<std::size_t> order = push_order(graph_);
    if (const auto cycle = find_cycle(waits_of(graph_, order))) report_cycle(*cycle);

    std::vector<std::size_t> position(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) position[order[i]] = i;
    for (std::size_t index = 0; index < graph_.jobs.size(); ++index) {
      const job_spec& job = graph_.jobs[index];
      for (const std::size_t dep : job.deps) {
        if (position[dep] < position[index]) continue;
        const job_spec& later = graph_.jobs[dep];
        const std::string problem = later.submit_at_us == job.submit_at_us
                                        ? "depends on job " + quote(later.id) + " (" + indexed("jobs", dep) +
                                              "), which is pushed later: same submit_at_us " +
                                              std::to_string(job.submit_at_us) + ", later in the file"
                                        : "depends on job " + quote(later.id) + " (" + indexed("jobs", dep) +
                                              ", submit_at_us " + std::to_string(later.submit_at_us) +
                                              "), which is pushed later than this job (submit_at_us " +
                                              std::to_string(job.submit_at_us) + ")";
        fail_field(job_places_[index], "deps", problem);
      }
    }
  }

  [[noreturn]] void report_cycle(const std::vector<cycle_link>& cycle) const {
    // Start at the job first in the file, so the report does not depend on the search.
    const auto start = static_cast<std::size_t>(
        std::min_element(cycle.begin(), cycle.end(),
                         [](const cycle_link& a, const cycle_link& b) { return a.job < b.job; }) -
        cycle.begin());
    std::string shown;
    bool has_entity_order = false;
    for (std::size_t i = 0; i < cycle.size(); ++i) {
      const cycle_link& link = cycle[(start + i) % cycle.size()];
      shown += quote(graph_.jobs[link.job].id);
      shown += link.kind == wait_kind::dependency ? " -> " : " => ";
      has_entity_order = has_entity_order || link.kind == wait_kind::entity_order;
    }
    shown += quote(graph_.jobs[cycle[start].job].id);
    if (has_entity_order) {
      shown += " (a -> b: a lists b in deps; a => b: b is pushed just before a on their entity)";
    }
    fail(job_places_[cycle[start].job], "dependency cycle: " + shown);
  }

  std::string_view file_name_;
  graph graph_;
  std::unordered_map<std::string, std::size_t> entity_index_;
  std::unordered_map<std::string, std::size_t> job_index_;
  std::vector<std::vector<std::string>> dep_names_;
  std::vector<std::string> job_places_;  ///< `jobs[i] (id "x")`, for messages after reading
};

}  // namespace

graph parse_graph(std::string_view json_text, std::string_view file_name) {
  return graph_reader(file_name).read(json_text);
}

}  // namespace cosched::submit

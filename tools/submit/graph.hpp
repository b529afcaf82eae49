// The job graph that cosched-submit runs: its in-memory form, and the reader that turns
// a JSON file into it, rejecting every unusable input with a one-line message.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cosched/priority.hpp"
#include "submit/compact.hpp"

namespace cosched::submit {

/// How the scheduler maps entities to rings (`scheduler.mode`).
enum class ring_mode { shared_ring, ring_per_entity };

/// Which entity the scheduler serves among those of one priority (`scheduler.policy`).
enum class policy_kind { fifo, rr, fair, deadline };

/// What the simulated command of a job does instead of succeeding (`fault`);
/// `body_throws`: the job's body throws once its dependencies have signalled,
/// so its command never exists.
enum class fault_kind : std::uint8_t { none, error, hang, slow, body_throws };

/// A job's `fault` field, decoded.
struct fault_spec {
  fault_kind kind = fault_kind::none;
  int errno_value = 0;        ///< for fault_kind::error: the errno value (EIO = 5)
  std::uint64_t slow_us = 0;  ///< for fault_kind::slow: how long the command takes
  rare_string text;           ///< as written in the file, e.g. "error:EIO"; empty for none
  /// For fault_kind::body_throws: the what() of the exception the body throws.
  std::string_view throw_message() const noexcept {
    const std::string_view written = text;
    return written.substr(std::min(written.size(), throw_prefix.size()));
  }
  static constexpr std::string_view throw_prefix = "throw:";
};

/// The `scheduler` object; every member holds its default when the field is absent.
struct scheduler_spec {
  ring_mode mode = ring_mode::shared_ring;
  std::uint32_t credit_limit = 1;
  std::optional<std::uint64_t> timeout_us;  ///< absent: no timeout
  policy_kind policy = policy_kind::fifo;
  std::uint32_t rings = 1;  ///< 1 to 1024; more than 1 only with ring_mode::shared_ring
  bool pipeline = false;    ///< scheduler_options::pipeline
};

struct entity_spec {
  std::string name;
  cosched::priority prio = cosched::priority::normal;
  /// `rings`: the shared rings the entity may use, as written (distinct, each below
  /// scheduler_spec::rings, shared_ring only); empty: every ring.
  std::vector<std::size_t> rings{};
};

/// One job. A graph may hold ten million of them (88 bytes each, and an id or
/// dependencies that do not fit inline, or a fault's text): compact members.
struct job_spec {
  short_string id;
  std::uint64_t duration_us = 1000;
  std::uint64_t submit_at_us = 0;
  /// When the job should have finished, in us since the run's start (every policy
  /// counts misses; policy deadline orders by it).
  optional_time deadline_us;
  dependency_list deps;  ///< indices into graph::jobs, in "deps" order, repeats kept
  fault_spec fault;
  std::uint32_t entity = 0;   ///< index into graph::entities
  std::uint32_t credits = 1;  ///< at most scheduler_spec::credit_limit
};

/// What an action does to its entity: `kill` it, or `set_rings` (entity::set_rings).
enum class action_kind { kill, set_rings };

struct action_spec {
  std::uint64_t at_us = 0;
  action_kind kind = action_kind::kill;
  std::size_t entity = 0;            ///< index into graph::entities
  std::vector<std::size_t> rings{};  ///< set_rings: the new set, as written (at least one ring, distinct)
};

/// A validated job graph. Every index in it is in range, every job's credits fit the
/// credit limit, every ring set names distinct rings of the scheduler, and every
/// dependency is pushed before the job that waits for it, so the dependencies together
/// with each entity's FIFO order form no cycle. Actions take effect at their times,
/// those of one time in file order.
///
/// @par Thread Safety
/// A plain value: distinct objects safe, shared objects safe for reading only.
struct graph {
  scheduler_spec scheduler;
  std::vector<entity_spec> entities;
  std::vector<job_spec> jobs;
  std::vector<action_spec> actions;
};

/// Unusable input. what() is one line: the file name, then the place in the file
/// (`jobs[1] (id "b")`, `scheduler`, `line 3, column 14`), then the problem.
class input_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The latest virtual instant any run may reach, in microseconds: 4e15 us (about 127
/// years), 4e18 ns, well below 2^63 ns, so that no time the scheduler, the rings or the
/// timers compute (in us or in ns) can overflow. Every time field is at most 1e15 us on
/// its own; check_run_length bounds what they add up to.
inline constexpr std::uint64_t max_run_us = 4'000'000'000'000'000;

/// How long a job can keep a ring busy, in us: `slow:<us>`'s time, a hang's timeout (0
/// without a timeout: it never completes, and nothing after it on its ring runs), any
/// other command its duration, cut at the timeout (a command still running then is
/// declared hung).
std::uint64_t ring_time_us(const job_spec& job, const scheduler_spec& scheduler);

/// An upper bound of every instant a run of `g` can reach, in us (the end of the run,
/// every push, kill, ring completion and timer): the latest submit_at_us or at_us, plus
/// the timeout, plus every job's ring_time_us as if all ran one after another (after
/// the last push some ring is always busy until the run ends, and a reset replays only
/// commands that had not started). Deadlines are at most 1e15 us and only compared.
/// Saturates at max_run_us + 1 (the sum of a huge graph cannot wrap).
std::uint64_t latest_instant_us(const graph& g);

/// Throws input_error (naming `file_name`, the job and its field) when
/// latest_instant_us(g) exceeds max_run_us. parse_graph calls it; call it for graphs
/// built otherwise (--generate).
void check_run_length(const graph& g, std::string_view file_name);

/// The largest graph text read, in bytes: 256 MiB (about three million jobs as
/// --save-graph writes them). A larger file, or a stream without end, is unusable input.
inline constexpr std::size_t max_graph_bytes = std::size_t{256} << 20;

/// `text` for a one-line message on a terminal: valid UTF-8 and printable characters
/// as they are; control characters (C0, DEL, C1) and every byte that is not part of a
/// valid UTF-8 sequence escaped as `\xNN`.
std::string printable(std::string_view text);

/// Parses and validates a graph. `file_name` is used only in messages.
/// Throws input_error for any unusable input (text larger than max_graph_bytes, a NUL
/// byte, malformed JSON, nesting deeper than 64, bad fields, times past max_run_us; and
/// std::bad_alloc when memory runs out); it never aborts on bad input. Thread-safe: no shared state.
graph parse_graph(std::string_view json_text, std::string_view file_name);

/// Reads the file at `path` and parses it; the messages name the file as `path` is
/// spelled. A missing or unreadable file, or one larger than max_graph_bytes, throws
/// input_error with the reason; reading stops at a NUL byte (so `/dev/zero` is
/// rejected at once, as malformed JSON).
graph load_graph(const std::filesystem::path& path);

/// The order in which the jobs are pushed: job indices sorted by submit_at_us, jobs
/// of the same time in file order.
std::vector<std::size_t> push_order(const graph& g);

}  // namespace cosched::submit

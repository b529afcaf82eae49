// Checkers of the trace rules that viewers (Perfetto, chrome://tracing) rely on, for
// the tests of cosched-submit's `--trace`: the Chrome trace-event JSON and the protobuf form.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace cosched::submit::testing {

/// The broken rules of a Chrome trace-event JSON document, one line each (at most
/// `max_problems`); empty when it keeps every rule:
/// - the document is an object with a `traceEvents` array (or that array itself);
/// - every event has `name`, `ph`, `pid` and `tid`, every event but metadata ("M")
///   a `ts`; only the phases M, X, i, b, e, s and f occur;
/// - "X" has a `dur`, and the complete events of one (pid, tid) nest: two of them
///   either do not overlap (one ending where the other starts is fine) or one
///   contains the other;
/// - "i" has a scope `s` of "g", "p" or "t";
/// - "b" and "e" have `cat` and `id`, and match per (pid, cat, id) as a stack taken in
///   time order: every "e" closes an open "b" at or after its time, none stays open;
/// - "s" and "f" have `cat` and `id`, each (cat, id) has exactly one "s" and one "f"
///   (with `"bp": "e"`), the "f" no earlier than the "s", and each binds to a complete
///   event on its own (pid, tid) that encloses its timestamp;
/// - every pid used has a `process_name`, every (pid, tid) of an X, i ("t"), b, e, s
///   or f event a `thread_name` metadata event.
std::vector<std::string> check_chrome_trace(const nlohmann::json& trace, std::size_t max_problems = 20);

/// One TrackDescriptor of a protobuf trace, as far as the checker reads it.
struct proto_track {
  std::uint64_t uuid = 0;
  std::uint64_t parent_uuid = 0;  ///< 0: none
  std::string name;               ///< the track's name, or its process's name
  bool process = false;           ///< carries a ProcessDescriptor
};

/// One TrackEvent packet.
struct proto_event {
  std::uint64_t timestamp_ns = 0;
  int type = 0;  ///< 1 SLICE_BEGIN, 2 SLICE_END, 3 INSTANT
  std::uint64_t track_uuid = 0;
  std::string name;
  std::vector<std::uint64_t> flow_ids;
  std::vector<std::uint64_t> terminating_flow_ids;
};

/// A protobuf trace (perfetto.protos.Trace) decoded by the checker's own reader.
struct proto_trace {
  std::vector<proto_track> tracks;    ///< in file order
  std::vector<proto_event> events;    ///< in file order
  std::vector<std::string> problems;  ///< malformed packets (bad wire format, missing fields)
};

/// Decodes `bytes`: packets (field 1) with timestamp (8), trusted_packet_sequence_id
/// (10, required non-zero), track_event (11) and track_descriptor (60).
proto_trace decode_proto_trace(std::string_view bytes);

/// The broken rules of a protobuf trace, one line each (at most `max_problems`); empty
/// when it keeps every rule: it decodes; track uuids are non-zero and unique, each
/// parent is a described track; every event's track is described before it; events
/// come in time order; SLICE_BEGIN and SLICE_END balance per track as a stack, an end
/// never before its begin; begins and instants have a name; every flow id occurs
/// exactly once in flow_ids and once in terminating_flow_ids, both on SLICE_BEGIN
/// events, the terminating one no earlier.
std::vector<std::string> check_proto_trace(std::string_view bytes, std::size_t max_problems = 20);

}  // namespace cosched::submit::testing

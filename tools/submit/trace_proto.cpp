// The protobuf form of a run's trace (trace.hpp's write_trace_proto): Perfetto's
// TracePacket messages written with a small encoder of our own, no SDK and no protoc.
#include <algorithm>
#include <functional>
#include <optional>
#include <ostream>
#include <queue>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "submit/trace.hpp"

namespace cosched::submit {
namespace {

// Field numbers of perfetto.protos (protos/perfetto/trace/...), the few this writer uses.
namespace field {
constexpr std::uint32_t trace_packet = 1;       // Trace.packet
constexpr std::uint32_t timestamp = 8;          // TracePacket.timestamp (ns)
constexpr std::uint32_t sequence_id = 10;       // TracePacket.trusted_packet_sequence_id
constexpr std::uint32_t track_event = 11;       // TracePacket.track_event
constexpr std::uint32_t sequence_flags = 13;    // TracePacket.sequence_flags
constexpr std::uint32_t track_descriptor = 60;  // TracePacket.track_descriptor
constexpr std::uint32_t track_uuid = 1;         // TrackDescriptor.uuid
constexpr std::uint32_t track_name = 2;         // TrackDescriptor.name
constexpr std::uint32_t track_process = 3;      // TrackDescriptor.process
constexpr std::uint32_t track_parent = 5;       // TrackDescriptor.parent_uuid
constexpr std::uint32_t process_pid = 1;        // ProcessDescriptor.pid
constexpr std::uint32_t process_name = 6;       // ProcessDescriptor.process_name
constexpr std::uint32_t event_annotations = 4;  // TrackEvent.debug_annotations
constexpr std::uint32_t event_type = 9;         // TrackEvent.type
constexpr std::uint32_t event_track = 11;       // TrackEvent.track_uuid
constexpr std::uint32_t event_name = 23;        // TrackEvent.name
constexpr std::uint32_t event_flows = 47;       // TrackEvent.flow_ids (fixed64)
constexpr std::uint32_t event_end_flows = 48;   // TrackEvent.terminating_flow_ids (fixed64)
constexpr std::uint32_t annotation_uint = 3;    // DebugAnnotation.uint_value
constexpr std::uint32_t annotation_string = 6;  // DebugAnnotation.string_value
constexpr std::uint32_t annotation_name = 10;   // DebugAnnotation.name
}  // namespace field

enum event_type : std::uint64_t { type_slice_begin = 1, type_slice_end = 2, type_instant = 3 };
constexpr std::uint64_t incremental_state_cleared = 1;  // TracePacket.SequenceFlags
constexpr std::uint64_t sequence = 1;                   // the one packet sequence of the trace

// Appends protobuf fields to a byte string: varints, fixed64 and length-delimited.
class encoder {
 public:
  void clear() { bytes_.clear(); }
  const std::string& bytes() const { return bytes_; }

  void varint(std::uint64_t value) {
    while (value >= 0x80) {
      bytes_.push_back(static_cast<char>((value & 0x7f) | 0x80));
      value >>= 7;
    }
    bytes_.push_back(static_cast<char>(value));
  }
  void uint_field(std::uint32_t number, std::uint64_t value) {
    varint(std::uint64_t{number} << 3);
    varint(value);
  }
  void fixed64_field(std::uint32_t number, std::uint64_t value) {
    varint(std::uint64_t{number} << 3 | 1);
    for (int k = 0; k < 8; ++k) bytes_.push_back(static_cast<char>((value >> (8 * k)) & 0xff));
  }
  void bytes_field(std::uint32_t number, std::string_view value) {
    varint(std::uint64_t{number} << 3 | 2);
    varint(value.size());
    bytes_.append(value);
  }

 private:
  std::string bytes_;
};

// An event to write, in an order that keeps every track's slices balanced when read in
// time order: at one instant, the ends of slices that lasted, then slices of no
// duration (begin then end), then begins, then instants.
struct timed_event {
  std::uint64_t at_us = 0;
  std::uint8_t rank = 0;    // 0 end, 1 slice of no duration, 2 begin, 3 instant
  std::uint8_t source = 0;  // 0 ring slice, 1 job span, 2 instant
  bool end = false;
  std::size_t index = 0;  // into the slices, the jobs or the instants
  friend bool operator<(const timed_event& a, const timed_event& b) {
    return std::tie(a.at_us, a.rank, a.source, a.index, a.end) <
           std::tie(b.at_us, b.rank, b.source, b.index, b.end);
  }
};

void add_span(std::vector<timed_event>& events, std::uint8_t source, std::size_t index, std::uint64_t begin,
              std::uint64_t end) {
  const bool instantaneous = begin == end;
  events.push_back({begin, static_cast<std::uint8_t>(instantaneous ? 1 : 2), source, false, index});
  events.push_back({end, static_cast<std::uint8_t>(instantaneous ? 1 : 0), source, true, index});
}

class proto_trace_writer {
 public:
  proto_trace_writer(std::ostream& out, const graph& g, const run_outcome& outcome)
      : out_(out), g_(g), outcome_(outcome), model_(model_trace(g, outcome)) {}

  void write() {
    assign_job_tracks();
    describe_tracks();
    link_flows();
    std::vector<timed_event> events;
    events.reserve(2 * (model_.slices.size() + g_.jobs.size()) + model_.instants.size());
    for (std::size_t i = 0; i < model_.slices.size(); ++i)
      add_span(events, 0, i, model_.slices[i].begin_us, model_.slices[i].stop_us);
    for (std::size_t i = 0; i < g_.jobs.size(); ++i)
      add_span(events, 1, i, outcome_.jobs[i].queued_us, job_end(i));
    for (std::size_t i = 0; i < model_.instants.size(); ++i)
      events.push_back({model_.instants[i].at_us, 3, 2, false, i});
    std::sort(events.begin(), events.end());
    for (const auto& e : events) write_event(e);
  }

 private:
  std::uint64_t ring_uuid(std::size_t ring) const { return 2 + ring; }
  std::uint64_t entity_uuid(std::size_t entity) const { return 2 + model_.rings + entity; }
  std::uint64_t job_track_uuid(std::size_t job) const {
    return 2 + model_.rings + g_.entities.size() + first_job_track_[g_.jobs[job].entity] + job_track_[job];
  }
  std::uint64_t job_end(std::size_t job) const {
    const auto& result = outcome_.jobs[job];
    return std::max(result.queued_us, result.finished_us.value_or(outcome_.end_us));
  }

  // The jobs of one entity overlap in time, and slices on one track must nest: each
  // job's span goes on the lowest-numbered job track of its entity free at its push.
  void assign_job_tracks() {
    std::vector<std::vector<std::size_t>> jobs_of(g_.entities.size());
    for (std::size_t i = 0; i < g_.jobs.size(); ++i) jobs_of[g_.jobs[i].entity].push_back(i);
    job_track_.assign(g_.jobs.size(), 0);
    tracks_of_.assign(g_.entities.size(), 0);
    for (std::size_t e = 0; e < g_.entities.size(); ++e) {
      auto& jobs = jobs_of[e];
      std::stable_sort(jobs.begin(), jobs.end(), [this](std::size_t a, std::size_t b) {
        return outcome_.jobs[a].queued_us < outcome_.jobs[b].queued_us;
      });
      using busy_track = std::pair<std::uint64_t, std::size_t>;  // (free from, track)
      std::priority_queue<busy_track, std::vector<busy_track>, std::greater<>> busy;
      std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> free;
      for (std::size_t job : jobs) {
        const auto queued = outcome_.jobs[job].queued_us;
        while (!busy.empty() && busy.top().first <= queued) {
          free.push(busy.top().second);
          busy.pop();
        }
        std::size_t track = tracks_of_[e];
        if (free.empty()) {
          ++tracks_of_[e];
        } else {
          track = free.top();
          free.pop();
        }
        job_track_[job] = track;
        busy.emplace(job_end(job), track);
      }
    }
    first_job_track_.assign(g_.entities.size(), 0);
    for (std::size_t e = 1; e < g_.entities.size(); ++e)
      first_job_track_[e] = first_job_track_[e - 1] + tracks_of_[e - 1];
  }

  void describe_tracks() {
    encoder process;
    process.uint_field(field::process_pid, 1);
    process.bytes_field(
        field::process_name,
        "cosched scheduler (" +
            std::string(g_.scheduler.mode == ring_mode::shared_ring ? "shared_ring" : "ring_per_entity") +
            ", credit limit " + std::to_string(g_.scheduler.credit_limit) + ")");
    body_.clear();
    body_.uint_field(field::track_uuid, 1);
    body_.bytes_field(field::track_process, process.bytes());
    write_packet(body_, std::nullopt, field::track_descriptor, true);
    for (std::size_t r = 0; r < model_.rings; ++r) describe(ring_uuid(r), 1, "ring " + std::to_string(r));
    for (std::size_t e = 0; e < g_.entities.size(); ++e)
      describe(entity_uuid(e), 1,
               g_.entities[e].name + " (" + std::string(to_string(g_.entities[e].prio)) + ")");
    for (std::size_t e = 0; e < g_.entities.size(); ++e)
      for (std::size_t k = 0; k < tracks_of_[e]; ++k)
        describe(2 + model_.rings + g_.entities.size() + first_job_track_[e] + k, entity_uuid(e),
                 "jobs " + std::to_string(k));
  }

  void describe(std::uint64_t uuid, std::uint64_t parent, const std::string& name) {
    body_.clear();
    body_.uint_field(field::track_uuid, uuid);
    body_.uint_field(field::track_parent, parent);
    body_.bytes_field(field::track_name, name);
    write_packet(body_, std::nullopt, field::track_descriptor, false);
  }

  // Per slice, the flows that leave it and those that end at it (flow id = index + 1).
  void link_flows() {
    out_first_.assign(model_.slices.size() + 1, 0);
    in_first_.assign(model_.slices.size() + 1, 0);
    for (const auto& flow : model_.flows) {
      ++out_first_[flow.from + 1];
      ++in_first_[flow.to + 1];
    }
    for (std::size_t i = 0; i < model_.slices.size(); ++i) {
      out_first_[i + 1] += out_first_[i];
      in_first_[i + 1] += in_first_[i];
    }
    out_ids_.resize(model_.flows.size());
    in_ids_.resize(model_.flows.size());
    auto out_next = out_first_, in_next = in_first_;
    for (std::size_t k = 0; k < model_.flows.size(); ++k) {
      out_ids_[out_next[model_.flows[k].from]++] = k + 1;
      in_ids_[in_next[model_.flows[k].to]++] = k + 1;
    }
  }

  void annotate(std::string_view name, std::string_view value) {
    annotation_.clear();
    annotation_.bytes_field(field::annotation_name, name);
    annotation_.bytes_field(field::annotation_string, value);
    event_.bytes_field(field::event_annotations, annotation_.bytes());
  }
  void annotate(std::string_view name, std::uint64_t value) {
    annotation_.clear();
    annotation_.bytes_field(field::annotation_name, name);
    annotation_.uint_field(field::annotation_uint, value);
    event_.bytes_field(field::event_annotations, annotation_.bytes());
  }

  void write_event(const timed_event& e) {
    event_.clear();
    if (e.source == 2) {
      const auto& instant = model_.instants[e.index];
      event_.uint_field(field::event_type, type_instant);
      event_.uint_field(field::event_track, instant.place == trace_place::scheduler ? 1
                                            : instant.place == trace_place::ring
                                                ? ring_uuid(instant.index)
                                                : entity_uuid(instant.index));
      event_.bytes_field(field::event_name, instant.name);
      if (instant.job) annotate("job", g_.jobs[*instant.job].id);
    } else if (e.source == 0) {
      const auto& slice = model_.slices[e.index];
      event_.uint_field(field::event_type, e.end ? type_slice_end : type_slice_begin);
      event_.uint_field(field::event_track, ring_uuid(slice.ring));
      if (!e.end) {
        event_.bytes_field(field::event_name, g_.jobs[slice.job].id);
        for (auto k = out_first_[e.index]; k < out_first_[e.index + 1]; ++k)
          event_.fixed64_field(field::event_flows, out_ids_[k]);
        for (auto k = in_first_[e.index]; k < in_first_[e.index + 1]; ++k)
          event_.fixed64_field(field::event_end_flows, in_ids_[k]);
        if (slice.attempt > 1) annotate("attempt", slice.attempt);
        if (!slice.completed) annotate("ended", slice.replayed ? "replayed" : "cut");
      }
    } else {
      const auto& result = outcome_.jobs[e.index];
      event_.uint_field(field::event_type, e.end ? type_slice_end : type_slice_begin);
      event_.uint_field(field::event_track, job_track_uuid(e.index));
      if (!e.end) {
        event_.bytes_field(field::event_name, g_.jobs[e.index].id);
        if (!result.error.empty()) annotate("error", result.error);
        if (result.cause) annotate("cause", g_.jobs[*result.cause].id);
        if (result.attempts != 1) annotate("attempts", result.attempts);
      }
    }
    write_packet(event_, e.at_us * 1000, field::track_event, false);
  }

  void write_packet(const encoder& payload, std::optional<std::uint64_t> timestamp_ns,
                    std::uint32_t payload_field, bool first) {
    packet_.clear();
    if (timestamp_ns) packet_.uint_field(field::timestamp, *timestamp_ns);
    packet_.bytes_field(payload_field, payload.bytes());
    packet_.uint_field(field::sequence_id, sequence);
    if (first) packet_.uint_field(field::sequence_flags, incremental_state_cleared);
    frame_.clear();
    frame_.bytes_field(field::trace_packet, packet_.bytes());
    out_.write(frame_.bytes().data(), static_cast<std::streamsize>(frame_.bytes().size()));
  }

  std::ostream& out_;
  const graph& g_;
  const run_outcome& outcome_;
  const trace_model model_;
  std::vector<std::size_t> job_track_;             // per job: its track among its entity's job tracks
  std::vector<std::size_t> tracks_of_;             // per entity: how many job tracks
  std::vector<std::size_t> first_job_track_;       // per entity: the index of its first job track
  std::vector<std::size_t> out_first_, in_first_;  // per slice: where its flows start in out_ids_, in_ids_
  std::vector<std::uint64_t> out_ids_, in_ids_;
  encoder body_, event_, annotation_, packet_, frame_;  // reused buffers
};

}  // namespace

void write_trace_proto(std::ostream& out, const graph& g, const run_outcome& outcome) {
  proto_trace_writer(out, g, outcome).write();
}

}  // namespace cosched::submit

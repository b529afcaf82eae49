// The trace checkers of trace_check.hpp: the trace-event rules of Chrome's JSON format
// and of Perfetto's protobuf TrackEvent packets, checked event by event.
#include "trace_check.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

namespace cosched::submit::testing {
namespace {

// Collects problems up to a limit, so a badly broken trace gives a readable list.
class problem_list {
 public:
  explicit problem_list(std::size_t limit) : limit_(limit) {}
  void add(std::string text) {
    if (problems_.size() < limit_) problems_.push_back(std::move(text));
  }
  std::vector<std::string> take() { return std::move(problems_); }

 private:
  std::size_t limit_;
  std::vector<std::string> problems_;
};

struct slice {
  std::uint64_t ts = 0;
  std::uint64_t end = 0;
};

using track_key = std::pair<std::int64_t, std::int64_t>;  // (pid, tid)

std::string where(std::size_t index, const nlohmann::json& event) {
  std::string text = "event " + std::to_string(index);
  if (event.is_object() && event.contains("name") && event["name"].is_string())
    text += " (\"" + event["name"].get<std::string>() + "\")";
  return text;
}

bool is_id(const nlohmann::json& id) { return id.is_string() || id.is_number_integer(); }

// Whether some slice of `slices` (sorted by ts) encloses `t` (ts <= t <= end).
bool encloses(const std::vector<slice>& slices, std::uint64_t t) {
  auto it = std::upper_bound(slices.begin(), slices.end(), t,
                             [](std::uint64_t value, const slice& s) { return value < s.ts; });
  while (it != slices.begin()) {
    --it;
    if (it->end >= t) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> check_chrome_trace(const nlohmann::json& trace, std::size_t max_problems) {
  problem_list problems(max_problems);
  const nlohmann::json* events = &trace;
  if (trace.is_object()) {
    if (!trace.contains("traceEvents") || !trace["traceEvents"].is_array()) {
      problems.add("no traceEvents array");
      return problems.take();
    }
    events = &trace["traceEvents"];
  } else if (!trace.is_array()) {
    problems.add("the document is neither an object nor an array");
    return problems.take();
  }

  std::set<std::int64_t> named_processes, used_pids;
  std::set<track_key> named_threads, used_threads;
  std::map<track_key, std::vector<slice>> slices;
  // (pid, cat, id) -> (ts, phase is "b", index) of its async events.
  std::map<std::tuple<std::int64_t, std::string, std::string>,
           std::vector<std::tuple<std::uint64_t, bool, std::size_t>>>
      async;
  struct flow_end {
    std::size_t index = 0;
    track_key track;
    std::uint64_t ts = 0;
  };
  std::map<std::pair<std::string, std::string>, std::pair<std::vector<flow_end>, std::vector<flow_end>>>
      flows;

  for (std::size_t i = 0; i < events->size(); ++i) {
    const auto& e = (*events)[i];
    if (!e.is_object()) {
      problems.add(where(i, e) + ": not an object");
      continue;
    }
    bool complete = true;
    for (const char* field : {"name", "ph"})
      if (!e.contains(field) || !e[field].is_string()) {
        problems.add(where(i, e) + ": no string field " + field);
        complete = false;
      }
    for (const char* field : {"pid", "tid"})
      if (!e.contains(field) || !e[field].is_number_integer()) {
        problems.add(where(i, e) + ": no integer field " + field);
        complete = false;
      }
    if (!complete) continue;
    const auto ph = e["ph"].get<std::string>();
    const track_key track{e["pid"].get<std::int64_t>(), e["tid"].get<std::int64_t>()};
    if (ph == "M") {
      const auto name = e["name"].get<std::string>();
      const bool names = name == "process_name" || name == "thread_name";
      if (names && !(e.contains("args") && e["args"].contains("name") && e["args"]["name"].is_string()))
        problems.add(where(i, e) + ": metadata without args.name");
      else if (name == "process_name")
        named_processes.insert(track.first);
      else if (name == "thread_name")
        named_threads.insert(track);
      continue;
    }
    if (!e.contains("ts") || !e["ts"].is_number_unsigned()) {
      problems.add(where(i, e) + ": no ts (a non-negative integer)");
      continue;
    }
    const auto ts = e["ts"].get<std::uint64_t>();
    used_pids.insert(track.first);
    const bool needs_ids = ph == "b" || ph == "e" || ph == "s" || ph == "f";
    if (needs_ids && (!e.contains("cat") || !e["cat"].is_string() || !e.contains("id") || !is_id(e["id"]))) {
      problems.add(where(i, e) + ": phase " + ph + " without cat and id");
      continue;
    }
    if (ph == "X") {
      if (!e.contains("dur") || !e["dur"].is_number_unsigned()) {
        problems.add(where(i, e) + ": X without dur (a non-negative integer)");
        continue;
      }
      slices[track].push_back({ts, ts + e["dur"].get<std::uint64_t>()});
      used_threads.insert(track);
    } else if (ph == "i") {
      const std::string scope = e.contains("s") && e["s"].is_string() ? e["s"].get<std::string>() : "";
      if (scope != "g" && scope != "p" && scope != "t")
        problems.add(where(i, e) + ": instant without scope g, p or t");
      if (scope == "t") used_threads.insert(track);
    } else if (ph == "b" || ph == "e") {
      async[{track.first, e["cat"].get<std::string>(), e["id"].dump()}].emplace_back(ts, ph == "b", i);
      used_threads.insert(track);
    } else if (ph == "s" || ph == "f") {
      if (ph == "f" && !(e.contains("bp") && e["bp"] == "e"))
        problems.add(where(i, e) + ": flow end without \"bp\": \"e\"");
      auto& ends = flows[{e["cat"].get<std::string>(), e["id"].dump()}];
      (ph == "s" ? ends.first : ends.second).push_back({i, track, ts});
      used_threads.insert(track);
    } else {
      problems.add(where(i, e) + ": phase " + ph + " is not one this trace may use");
    }
  }

  // Complete events nest per track: sorted by start (longer first on ties), each one
  // must end within the innermost slice still open at its start.
  for (auto& [track, list] : slices) {
    std::stable_sort(list.begin(), list.end(), [](const slice& a, const slice& b) {
      return a.ts != b.ts ? a.ts < b.ts : a.end > b.end;
    });
    std::vector<slice> open;
    for (const auto& s : list) {
      while (!open.empty() && open.back().end <= s.ts) open.pop_back();
      if (!open.empty() && s.end > open.back().end) {
        problems.add("pid " + std::to_string(track.first) + " tid " + std::to_string(track.second) +
                     ": slice " + std::to_string(s.ts) + "-" + std::to_string(s.end) + " overlaps slice " +
                     std::to_string(open.back().ts) + "-" + std::to_string(open.back().end));
      }
      open.push_back(s);
    }
  }
  for (auto& [key, list] : async) {
    std::stable_sort(list.begin(), list.end(),
                     [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
    std::size_t open = 0;
    for (const auto& [ts, begins, index] : list) {
      if (begins) {
        ++open;
      } else if (open == 0) {
        problems.add("event " + std::to_string(index) + ": async end " + std::get<2>(key) +
                     " with no begin open");
      } else {
        --open;
      }
    }
    if (open != 0)
      problems.add("async id " + std::get<2>(key) + " (" + std::get<1>(key) + "): a begin without end");
  }
  for (const auto& [key, ends] : flows) {
    if (ends.first.size() != 1 || ends.second.size() != 1) {
      problems.add("flow " + key.second + " (" + key.first + "): " + std::to_string(ends.first.size()) +
                   " starts and " + std::to_string(ends.second.size()) + " ends");
      continue;
    }
    const auto& start = ends.first.front();
    const auto& finish = ends.second.front();
    if (finish.ts < start.ts) problems.add("flow " + key.second + ": ends before it starts");
    for (const auto* end : {&start, &finish}) {
      auto it = slices.find(end->track);
      if (it == slices.end() || !encloses(it->second, end->ts))
        problems.add("event " + std::to_string(end->index) + ": flow " + key.second +
                     " binds to no slice of its track at ts " + std::to_string(end->ts));
    }
  }
  for (auto pid : used_pids)
    if (!named_processes.count(pid)) problems.add("pid " + std::to_string(pid) + " has no process_name");
  for (const auto& track : used_threads)
    if (!named_threads.count(track))
      problems.add("pid " + std::to_string(track.first) + " tid " + std::to_string(track.second) +
                   " has no thread_name");
  return problems.take();
}

namespace {

// A protobuf message reader: varints, fixed64 and length-delimited fields.
class wire_reader {
 public:
  explicit wire_reader(std::string_view bytes) : bytes_(bytes) {}
  bool done() const { return pos_ >= bytes_.size(); }
  bool failed() const { return failed_; }

  std::optional<std::uint64_t> varint() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) break;
      const auto byte = static_cast<unsigned char>(bytes_[pos_++]);
      value |= std::uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80u) == 0) return value;
    }
    failed_ = true;
    return std::nullopt;
  }
  // One field: its number, wire type and value (integer, or bytes for type 2).
  struct field {
    std::uint32_t number = 0;
    std::uint32_t wire_type = 0;
    std::uint64_t integer = 0;
    std::string_view bytes;
  };
  std::optional<field> next() {
    const auto key = varint();
    if (!key) return std::nullopt;
    field f;
    f.number = static_cast<std::uint32_t>(*key >> 3);
    f.wire_type = static_cast<std::uint32_t>(*key & 7);
    switch (f.wire_type) {
      case 0: {
        const auto v = varint();
        if (!v) return std::nullopt;
        f.integer = *v;
        return f;
      }
      case 1:
      case 5: {
        const std::size_t size = f.wire_type == 1 ? 8 : 4;
        if (bytes_.size() - pos_ < size) break;
        for (std::size_t k = 0; k < size; ++k)
          f.integer |= std::uint64_t{static_cast<unsigned char>(bytes_[pos_ + k])} << (8 * k);
        pos_ += size;
        return f;
      }
      case 2: {
        const auto length = varint();
        if (!length || bytes_.size() - pos_ < *length) break;
        f.bytes = bytes_.substr(pos_, static_cast<std::size_t>(*length));
        pos_ += static_cast<std::size_t>(*length);
        return f;
      }
      default:
        break;
    }
    failed_ = true;
    return std::nullopt;
  }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

// Repeated fixed64: unpacked (wire type 1) or packed (wire type 2).
void read_fixed64s(const wire_reader::field& f, std::vector<std::uint64_t>& out) {
  if (f.wire_type == 1) {
    out.push_back(f.integer);
    return;
  }
  for (std::size_t k = 0; k + 8 <= f.bytes.size(); k += 8) {
    std::uint64_t v = 0;
    for (std::size_t b = 0; b < 8; ++b)
      v |= std::uint64_t{static_cast<unsigned char>(f.bytes[k + b])} << (8 * b);
    out.push_back(v);
  }
}

}  // namespace

proto_trace decode_proto_trace(std::string_view bytes) {
  proto_trace trace;
  wire_reader packets(bytes);
  std::size_t index = 0;
  while (!packets.done()) {
    const auto packet = packets.next();
    if (!packet) break;
    const std::string at = "packet " + std::to_string(index++);
    if (packet->number != 1 || packet->wire_type != 2) {
      trace.problems.push_back(at + ": not a TracePacket (field 1)");
      continue;
    }
    wire_reader fields(packet->bytes);
    std::optional<std::uint64_t> timestamp, sequence;
    std::optional<std::string_view> event, descriptor;
    while (!fields.done()) {
      const auto f = fields.next();
      if (!f) break;
      if (f->number == 8 && f->wire_type == 0) timestamp = f->integer;
      if (f->number == 10 && f->wire_type == 0) sequence = f->integer;
      if (f->number == 11 && f->wire_type == 2) event = f->bytes;
      if (f->number == 60 && f->wire_type == 2) descriptor = f->bytes;
    }
    if (fields.failed()) trace.problems.push_back(at + ": malformed");
    if (!sequence || *sequence == 0) trace.problems.push_back(at + ": no trusted_packet_sequence_id");
    if (descriptor) {
      proto_track track;
      wire_reader d(*descriptor);
      while (!d.done()) {
        const auto f = d.next();
        if (!f) break;
        if (f->number == 1 && f->wire_type == 0) track.uuid = f->integer;
        if (f->number == 5 && f->wire_type == 0) track.parent_uuid = f->integer;
        if (f->number == 2 && f->wire_type == 2) track.name = std::string(f->bytes);
        if (f->number == 3 && f->wire_type == 2) {
          track.process = true;
          wire_reader p(f->bytes);
          while (!p.done()) {
            const auto pf = p.next();
            if (!pf) break;
            if (pf->number == 6 && pf->wire_type == 2 && track.name.empty())
              track.name = std::string(pf->bytes);
          }
          if (p.failed()) trace.problems.push_back(at + ": malformed ProcessDescriptor");
        }
      }
      if (d.failed()) trace.problems.push_back(at + ": malformed TrackDescriptor");
      trace.tracks.push_back(std::move(track));
    }
    if (event) {
      proto_event e;
      if (!timestamp) trace.problems.push_back(at + ": TrackEvent without timestamp");
      e.timestamp_ns = timestamp.value_or(0);
      wire_reader r(*event);
      while (!r.done()) {
        const auto f = r.next();
        if (!f) break;
        if (f->number == 9 && f->wire_type == 0) e.type = static_cast<int>(f->integer);
        if (f->number == 11 && f->wire_type == 0) e.track_uuid = f->integer;
        if (f->number == 23 && f->wire_type == 2) e.name = std::string(f->bytes);
        if (f->number == 47) read_fixed64s(*f, e.flow_ids);
        if (f->number == 48) read_fixed64s(*f, e.terminating_flow_ids);
      }
      if (r.failed()) trace.problems.push_back(at + ": malformed TrackEvent");
      trace.events.push_back(std::move(e));
    }
  }
  if (packets.failed()) trace.problems.push_back("the packet stream is cut or malformed");
  return trace;
}

std::vector<std::string> check_proto_trace(std::string_view bytes, std::size_t max_problems) {
  problem_list problems(max_problems);
  const auto trace = decode_proto_trace(bytes);
  for (const auto& p : trace.problems) problems.add(p);
  std::set<std::uint64_t> described;
  for (const auto& track : trace.tracks) {
    if (track.uuid == 0) problems.add("a track with uuid 0");
    if (!described.insert(track.uuid).second)
      problems.add("track " + std::to_string(track.uuid) + " described twice");
    if (track.name.empty()) problems.add("track " + std::to_string(track.uuid) + " has no name");
  }
  for (const auto& track : trace.tracks)
    if (track.parent_uuid != 0 && !described.count(track.parent_uuid))
      problems.add("track " + std::to_string(track.uuid) + ": its parent is not described");
  // Descriptors come first in this writer's traces; an event's track must be known by then.
  std::map<std::uint64_t, std::vector<std::uint64_t>> open;  // track -> begin timestamps
  std::map<std::uint64_t, std::pair<std::vector<std::uint64_t>, std::vector<std::uint64_t>>>
      flows;  // id -> times
  std::uint64_t last = 0;
  for (std::size_t i = 0; i < trace.events.size(); ++i) {
    const auto& e = trace.events[i];
    const std::string at = "event " + std::to_string(i) + " (\"" + e.name + "\")";
    if (!described.count(e.track_uuid))
      problems.add(at + ": track " + std::to_string(e.track_uuid) + " not described");
    if (e.timestamp_ns < last) problems.add(at + ": earlier than the event before it");
    last = std::max(last, e.timestamp_ns);
    if ((e.type == 1 || e.type == 3) && e.name.empty()) problems.add(at + ": no name");
    if (e.type == 1) {
      open[e.track_uuid].push_back(e.timestamp_ns);
    } else if (e.type == 2) {
      auto& stack = open[e.track_uuid];
      if (stack.empty()) {
        problems.add(at + ": SLICE_END with no slice open on track " + std::to_string(e.track_uuid));
      } else {
        if (e.timestamp_ns < stack.back()) problems.add(at + ": SLICE_END before its begin");
        stack.pop_back();
      }
    } else if (e.type != 3) {
      problems.add(at + ": type " + std::to_string(e.type));
    }
    if ((!e.flow_ids.empty() || !e.terminating_flow_ids.empty()) && e.type != 1)
      problems.add(at + ": flow on an event that begins no slice");
    for (auto id : e.flow_ids) flows[id].first.push_back(e.timestamp_ns);
    for (auto id : e.terminating_flow_ids) flows[id].second.push_back(e.timestamp_ns);
  }
  for (const auto& [track, stack] : open)
    if (!stack.empty())
      problems.add("track " + std::to_string(track) + ": " + std::to_string(stack.size()) +
                   " slices never end");
  for (const auto& [id, times] : flows) {
    if (times.first.size() != 1 || times.second.size() != 1)
      problems.add("flow " + std::to_string(id) + ": " + std::to_string(times.first.size()) +
                   " origins and " + std::to_string(times.second.size()) + " terminations");
    else if (times.second.front() < times.first.front())
      problems.add("flow " + std::to_string(id) + ": terminates before it starts");
  }
  return problems.take();
}

}  // namespace cosched::submit::testing

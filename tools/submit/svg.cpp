// The SVG timeline of a cosched-submit run: lanes for rings and entities, every job
// drawn for small runs, pixel-column summaries for large ones; see svg.hpp.
// Somewhat over 800 lines: one writer of one format, whose parts (scale, lanes,
// bars, marks, legend, summaries) share the layout computed at the top.
#include "submit/svg.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "submit/marks.hpp"
#include "submit/stats.hpp"

namespace cosched::submit {

namespace {

constexpr std::array<std::string_view, outcome_class_count> class_names = {
    "ok", "error", "caused", "killed", "cancelled", "timed_out", "shutdown"};
constexpr std::array<std::string_view, outcome_class_count> class_colours = {
    "#59a14f", "#e15759", "#f28e2b", "#8e6bbf", "#a5a5a5", "#b5179e", "#4e79a7"};
constexpr std::array<std::string_view, outcome_class_count> class_legends = {
    "ok",        "failed: own error",  "failed: caused by another job", "killed",
    "cancelled", "timed out (guilty)", "shut down (nothing left to do)"};

}  // namespace

outcome_class classify(const job_outcome& job) noexcept {
  if (job.error.empty()) return outcome_class::ok;
  if (job.cause) return outcome_class::caused;
  if (job.error == "killed") return outcome_class::killed;
  if (job.error == "cancelled") return outcome_class::cancelled;
  if (job.error == "timed_out") return outcome_class::timed_out;
  if (job.error == "shutdown") return outcome_class::shutdown;
  return outcome_class::error;
}

std::string_view outcome_class_name(outcome_class c) noexcept {
  return class_names[static_cast<std::size_t>(c)];
}
std::string_view outcome_colour(outcome_class c) noexcept {
  return class_colours[static_cast<std::size_t>(c)];
}

namespace {

// ---------------------------------------------------------------- text helpers

// Valid UTF-8 with XML-forbidden characters replaced, as a list of code points'
// byte ranges, so names can be cut at a character boundary.
std::vector<std::string> characters_of(std::string_view text) {
  std::vector<std::string> chars;
  for (std::size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    std::size_t length = byte < 0x80           ? 1
                         : (byte >> 5) == 0x6  ? 2
                         : (byte >> 4) == 0xe  ? 3
                         : (byte >> 3) == 0x1e ? 4
                                               : 0;
    bool valid = length != 0 && i + length <= text.size();
    for (std::size_t k = 1; valid && k < length; ++k)
      valid = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    if (!valid) {
      chars.emplace_back("?");
      ++i;
      continue;
    }
    if (length == 1 && byte < 0x20 && byte != '\t')
      chars.emplace_back("?");  // not allowed in XML 1.0
    else
      chars.emplace_back(text.substr(i, length));
    i += length;
  }
  return chars;
}

std::string escape_char(const std::string& c) {
  if (c == "&") return "&amp;";
  if (c == "<") return "&lt;";
  if (c == ">") return "&gt;";
  if (c == "\"") return "&quot;";
  if (c == "'") return "&apos;";
  return c;
}

/// `text` escaped for XML character data and attribute values.
std::string xml(std::string_view text) {
  std::string out;
  for (const auto& c : characters_of(text)) out += escape_char(c);
  return out;
}

/// `text` escaped, cut to at most `max_chars` characters (the last one "…").
std::string xml_cut(std::string_view text, std::size_t max_chars) {
  const auto chars = characters_of(text);
  std::string out;
  if (chars.size() <= max_chars) {
    for (const auto& c : chars) out += escape_char(c);
    return out;
  }
  for (std::size_t i = 0; i + 1 < max_chars; ++i) out += escape_char(chars[i]);
  return out + "\xe2\x80\xa6";
}

std::size_t char_count(std::string_view text) { return characters_of(text).size(); }

/// "1 job", "2 jobs".
std::string count_of(std::size_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

/// A coordinate with at most one decimal, without a trailing ".0"; locale-free.
std::string num(double value) {
  std::array<char, 64> buffer{};
  value = std::round(value * 10.0) / 10.0;
  if (value == 0.0) value = 0.0;
  auto [end, ec] =
      std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::fixed, 1);
  if (ec != std::errc()) return "0";
  std::string text(buffer.data(), end);
  if (text.size() > 2 && text.compare(text.size() - 2, 2, ".0") == 0) text.resize(text.size() - 2);
  return text;
}

/// Microseconds as milliseconds for people: "3.024 ms", "120 ms".
std::string ms_text(std::uint64_t us) {
  if (us % 1000 == 0) return std::to_string(us / 1000) + " ms";
  std::string text = fixed_places(static_cast<double>(us) / 1000.0, 3);
  while (text.back() == '0') text.pop_back();
  return text + " ms";
}

std::string_view mode_name(ring_mode m) {
  return m == ring_mode::shared_ring ? "shared_ring" : "ring_per_entity";
}
std::string_view policy_name(policy_kind p) {
  switch (p) {
    case policy_kind::fifo:
      return "fifo";
    case policy_kind::rr:
      return "rr";
    case policy_kind::fair:
      return "fair";
    case policy_kind::deadline:
      return "deadline";
  }
  return "?";
}

// ---------------------------------------------------------------- layout

constexpr double label_width = 200;  // the left column: lane names and counts
constexpr double right_margin = 24;
constexpr double lane_gap = 8;
constexpr double axis_top = 74;  // tick labels
constexpr double lanes_top = 84;
constexpr double marker_strip = 11;  // the top of each lane: room for marker labels
constexpr double detail_ring_height = 30;
constexpr double detail_row_height = 15;
constexpr std::size_t detail_max_rows = 10;
constexpr double summary_ring_height = 44;
constexpr double summary_entity_height = 40;
constexpr double summary_column_px = 2;
constexpr double char_px = 6.0;  // rough width of a 10px sans-serif character

struct time_scale {
  double x0 = label_width;
  double width = 0;
  double t_max = 1;
  double x(double t) const { return x0 + width * t / t_max; }
};

// A "nice" step (1, 2 or 5 times a power of ten) of at least `raw`.
double nice_step(double raw) {
  if (raw <= 1) return 1;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw) return m * power;
  return 10 * power;
}

enum class lane_kind { ring, entity };

struct lane {
  lane_kind kind = lane_kind::ring;
  std::vector<std::size_t> members;  // ring or entity indices (several: the aggregated lane)
  std::string label;                 // escaped
  std::string detail;                // escaped, second line
  double y = 0;
  double height = 0;
};

class svg_writer {
 public:
  svg_writer(std::ostream& out, const graph& g, const run_outcome& outcome, const svg_options& options)
      : out_(out), g_(g), outcome_(outcome), options_(options), spans_(run_spans(g, outcome)) {
    if (outcome.jobs.size() != g.jobs.size())
      throw std::invalid_argument("write_svg: the outcome is not of this graph");
    lane_of_entity_.assign(g.entities.size(), npos);
    lane_of_ring_.assign(outcome.rings, npos);
    for (const auto& run : outcome.runs)
      if (run.ring >= lane_of_ring_.size()) lane_of_ring_.resize(run.ring + 1, npos);
    const std::size_t ring_count = lane_of_ring_.size();
    summarised_ =
        g.jobs.size() > options.detail_limit || ring_count + g.entities.size() > options.max_detailed_lanes;

    std::uint64_t t_max = std::max<std::uint64_t>(outcome.end_us, 1);
    for (const auto& span : spans_) t_max = std::max(t_max, span.stop);
    for (const auto& action : g.actions) t_max = std::max(t_max, action.at_us);
    for (const auto& job : outcome.jobs) t_max = std::max(t_max, job.finished_us.value_or(0));
    scale_.width = options.width - label_width - right_margin;
    scale_.t_max = static_cast<double>(t_max);
  }

  void write() {
    if (summarised_) logarithmic_counts_ = counts_need_log_scale();
    make_lanes();
    if (!summarised_) place_job_rows();
    layout();
    header();
    title();
    axis(axis_top, true);
    lanes_background();
    if (summarised_)
      summary_lanes();
    else
      detail_lanes();
    markers();
    axis(legend_top_ - 18, false);
    legend();
    out_ << "</svg>\n";
  }

 private:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  // ------------------------------------------------------------ lanes
  void make_lanes() {
    const std::size_t ring_count = lane_of_ring_.size();
    std::size_t max_lanes = summarised_ ? std::max<std::size_t>(options_.max_summary_ring_lanes, 1) : npos;
    const bool per_entity_rings =
        g_.scheduler.mode == ring_mode::ring_per_entity && ring_count == g_.entities.size();
    std::vector<std::size_t> runs_per_ring(ring_count, 0);
    std::vector<std::uint64_t> busy_per_ring(ring_count, 0);
    for (std::size_t i = 0; i < spans_.size(); ++i) {
      ++runs_per_ring[outcome_.runs[i].ring];
      busy_per_ring[outcome_.runs[i].ring] += spans_[i].busy_us();
    }
    for (std::size_t r = 0; r < ring_count; ++r) {
      if (r + 1 == max_lanes && ring_count > max_lanes) {
        lane aggregate{lane_kind::ring, {}, {}, {}, 0, 0};
        std::size_t runs = 0;
        std::uint64_t busy = 0;
        for (std::size_t k = r; k < ring_count; ++k) {
          aggregate.members.push_back(k);
          lane_of_ring_[k] = lanes_.size();
          runs += runs_per_ring[k];
          busy += busy_per_ring[k];
        }
        aggregate.label = "rings " + std::to_string(r) + "\xe2\x80\x93" + std::to_string(ring_count - 1) +
                          " (" + std::to_string(ring_count - r) + ")";
        aggregate.detail = count_of(runs, "run", "runs") + ", busy " + percent(busy, ring_count - r);
        lanes_.push_back(std::move(aggregate));
        break;
      }
      lane l{lane_kind::ring, {r}, "ring " + std::to_string(r), {}, 0, 0};
      if (per_entity_rings) l.label += " \xc2\xb7 " + xml_cut(g_.entities[r].name, 18);
      l.detail = count_of(runs_per_ring[r], "run", "runs") + ", busy " + percent(busy_per_ring[r], 1);
      lane_of_ring_[r] = lanes_.size();
      lanes_.push_back(std::move(l));
    }
    first_entity_lane_ = lanes_.size();
    std::vector<std::size_t> jobs_of(g_.entities.size(), 0), failed_of(g_.entities.size(), 0);
    for (std::size_t i = 0; i < g_.jobs.size(); ++i) {
      ++jobs_of[g_.jobs[i].entity];
      failed_of[g_.jobs[i].entity] += !outcome_.jobs[i].error.empty();
    }
    max_lanes = summarised_ ? std::max<std::size_t>(options_.max_summary_entity_lanes, 1) : npos;
    for (std::size_t e = 0; e < g_.entities.size(); ++e) {
      if (e + 1 == max_lanes && g_.entities.size() > max_lanes) {
        lane aggregate{lane_kind::entity, {}, {}, {}, 0, 0};
        std::size_t jobs = 0, failed = 0;
        for (std::size_t k = e; k < g_.entities.size(); ++k) {
          aggregate.members.push_back(k);
          lane_of_entity_[k] = lanes_.size();
          jobs += jobs_of[k];
          failed += failed_of[k];
        }
        aggregate.label = std::to_string(g_.entities.size() - e) + " more entities";
        aggregate.detail = count_of(jobs, "job", "jobs") + ", " + std::to_string(failed) + " failed";
        lanes_.push_back(std::move(aggregate));
        break;
      }
      lane l{lane_kind::entity, {e}, xml_cut(g_.entities[e].name, 24), {}, 0, 0};
      l.detail = std::string(to_string(g_.entities[e].prio)) + " \xc2\xb7 " +
                 count_of(jobs_of[e], "job", "jobs") + ", " + std::to_string(failed_of[e]) + " failed";
      lane_of_entity_[e] = lanes_.size();
      lanes_.push_back(std::move(l));
    }
  }

  std::string percent(std::uint64_t busy, std::size_t rings) const {
    const double share =
        static_cast<double>(busy) / (scale_.t_max * static_cast<double>(std::max<std::size_t>(rings, 1)));
    return fixed_places(100.0 * share, 1) + "%";
  }

  // A job's bar on its entity lane: from its run to its finished fence; a job
  // that never ran gets a narrow bar ending at its finish.
  struct job_bar {
    double x_from = 0, x_to = 0;
    bool ran = false;
    std::size_t row = 0;
  };

  void place_job_rows() {
    bars_.resize(g_.jobs.size());
    std::vector<std::vector<std::size_t>> jobs_of_lane(lanes_.size());
    for (std::size_t i = 0; i < g_.jobs.size(); ++i) {
      const auto& result = outcome_.jobs[i];
      const double finish = scale_.x(static_cast<double>(result.finished_us.value_or(outcome_.end_us)));
      auto& bar = bars_[i];
      bar.ran = result.scheduled_us.has_value();
      if (bar.ran) {
        bar.x_from = scale_.x(static_cast<double>(*result.scheduled_us));
        bar.x_to = std::max(finish, bar.x_from + 1.5);
      } else {
        bar.x_to = std::max(finish, scale_.x0 + 4);
        bar.x_from = bar.x_to - 4;
      }
      jobs_of_lane[lane_of_entity_[g_.jobs[i].entity]].push_back(i);
    }
    for (std::size_t l = first_entity_lane_; l < lanes_.size(); ++l) {
      auto& jobs = jobs_of_lane[l];
      std::stable_sort(jobs.begin(), jobs.end(),
                       [&](std::size_t a, std::size_t b) { return bars_[a].x_from < bars_[b].x_from; });
      std::vector<double> row_end;  // the right edge of each row's last bar
      for (std::size_t i : jobs) {
        auto& bar = bars_[i];
        std::size_t row = npos;
        for (std::size_t r = 0; r < row_end.size() && row == npos; ++r)
          if (row_end[r] + 1 <= bar.x_from) row = r;
        if (row == npos && row_end.size() < detail_max_rows) {
          row = row_end.size();
          row_end.push_back(0);
        }
        if (row == npos)  // more overlap than rows: share the row that frees first
          row = static_cast<std::size_t>(std::min_element(row_end.begin(), row_end.end()) - row_end.begin());
        bar.row = row;
        row_end[row] = std::max(row_end[row], bar.x_to);
      }
      rows_of_lane_[l] = std::max<std::size_t>(row_end.size(), 1);
    }
  }

  void layout() {
    double y = lanes_top;
    for (std::size_t l = 0; l < lanes_.size(); ++l) {
      auto& ln = lanes_[l];
      if (l == first_entity_lane_ && l > 0) y += lane_gap;  // between rings and entities
      ln.y = y;
      if (ln.kind == lane_kind::ring)
        ln.height = summarised_ ? summary_ring_height : detail_ring_height;
      else if (summarised_)
        ln.height = summary_entity_height;
      else
        ln.height = std::max<double>(
            static_cast<double>(rows_of_lane_[l]) * detail_row_height + marker_strip + 3, 30);
      y += ln.height + lane_gap;
    }
    lanes_bottom_ = y - lane_gap;
    legend_top_ = lanes_bottom_ + 44;
    const std::size_t legend_rows = 3;
    height_ = legend_top_ + static_cast<double>(legend_rows) * 18 + 14;
  }

  // ------------------------------------------------------------ document
  void header() {
    out_ << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << options_.width
         << "\" height=\"" << num(height_) << "\" viewBox=\"0 0 " << options_.width << " " << num(height_)
         << "\" font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\" font-size=\"11\">\n";
    out_ << "<style>\n"
            "text{fill:#222}\n"
            ".title{font-size:15px;font-weight:bold}\n"
            ".sub{font-size:11.5px;fill:#444}\n"
            ".note{font-size:10.5px;fill:#666}\n"
            ".tick{font-size:10px;fill:#555}\n"
            ".name{font-size:11.5px;font-weight:bold}\n"
            ".count{font-size:10px;fill:#666}\n"
            ".bar{font-size:9px;fill:#fff;pointer-events:none}\n"
            ".mark{font-size:9px}\n"
            ".grid{stroke:#e2e2e2;stroke-width:1}\n"
            ".lane{fill:#f7f7f7}\n";
    for (std::size_t c = 0; c < outcome_class_count; ++c)
      out_ << "." << class_names[c] << "{fill:" << class_colours[c] << "}\n";
    out_ << ".run{stroke:#fff;stroke-width:0.6}\n"
            ".replayed{fill:url(#hatch);stroke:#777;stroke-width:0.8}\n"
            ".replay{stroke:#111;stroke-width:1.6}\n"
            ".cut{stroke:#111;stroke-width:1;stroke-dasharray:3 2}\n"
            ".kill-mark{stroke:"
         << class_colours[3]
         << ";stroke-width:1.6;stroke-dasharray:4 2}\n"
            ".timeout-mark{stroke:"
         << class_colours[5]
         << ";stroke-width:1.6}\n"
            ".reset-mark{stroke:#111;stroke-width:1.2;stroke-dasharray:2 2}\n"
            ".fail-mark{stroke:#7a0010;stroke-width:1.6;fill:none}\n"
            ".shutdown-mark{stroke:"
         << class_colours[6]
         << ";stroke-width:1.6;stroke-dasharray:6 3}\n"
            "</style>\n";
    out_ << "<defs><pattern id=\"hatch\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" "
            "patternTransform=\"rotate(45)\"><rect width=\"5\" height=\"5\" fill=\"#e4e4e4\"/>"
            "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"5\" stroke=\"#777\" "
            "stroke-width=\"2\"/></pattern></defs>\n";
    out_ << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
  }

  void title() {
    std::size_t succeeded = 0;
    std::map<std::string, std::size_t> errors;
    for (const auto& job : outcome_.jobs) {
      if (job.error.empty())
        ++succeeded;
      else
        ++errors[job.error];
    }
    const std::size_t ring_count = lane_of_ring_.size();
    out_ << "<text class=\"title\" x=\"12\" y=\"22\">cosched-submit: "
         << count_of(g_.jobs.size(), "job", "jobs") << ", "
         << count_of(g_.entities.size(), "entity", "entities") << ", "
         << count_of(ring_count, "ring", "rings") << " \xe2\x80\x94 " << succeeded << " ok, "
         << g_.jobs.size() - succeeded << " failed</text>\n";
    out_ << "<text class=\"sub\" x=\"12\" y=\"40\">" << mode_name(g_.scheduler.mode) << ", credit limit "
         << g_.scheduler.credit_limit << ", "
         << (g_.scheduler.timeout_us ? "timeout " + std::to_string(*g_.scheduler.timeout_us) + " us"
                                     : std::string("no timeout"))
         << ", policy " << policy_name(g_.scheduler.policy) << "; last fence at " << ms_text(outcome_.end_us);
    if (outcome_.shut_down_early) out_ << " (nothing left to do: shut down)";
    std::size_t with_deadline = 0, missed = 0;
    for (std::size_t i = 0; i < g_.jobs.size(); ++i) {
      if (!g_.jobs[i].deadline_us) continue;
      ++with_deadline;
      missed += outcome_.jobs[i].finished_us.value_or(0) > *g_.jobs[i].deadline_us;
    }
    if (with_deadline > 0) out_ << "; deadline misses " << missed << " of " << with_deadline;
    if (!errors.empty()) {
      out_ << "; errors:";
      const char* separator = " ";
      for (const auto& [name, count] : errors) {
        out_ << separator << xml(name) << " " << count;
        separator = ", ";
      }
    }
    out_ << "</text>\n";
    out_ << "<text class=\"note\" x=\"12\" y=\"56\">";
    if (summarised_) {
      out_ << "summarised: " << g_.jobs.size() << " jobs in columns of "
           << fixed_places(scale_.t_max * summary_column_px / scale_.width / 1000.0, 3)
           << " ms; ring lanes: share of the column the ring was busy, by outcome; entity lanes: jobs "
              "finished per column"
           << (logarithmic_counts_ ? " (log scale)" : "") << ", by outcome";
    } else {
      out_ << "every job drawn: ring lanes show each run (began to stopped); entity lanes each job (run to "
              "finished)";
    }
    out_ << "</text>\n";
  }

  void axis(double label_y, bool grid) {
    const double target_ticks = std::max(2.0, scale_.width / 90.0);
    const double step = nice_step(scale_.t_max / target_ticks);
    const double step_ms = step / 1000.0;
    const int decimals = step_ms >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step_ms) - 1e-9));
    out_ << "<g class=\"axis\">\n";
    out_ << "<text class=\"tick\" x=\"" << num(scale_.x0 - 16) << "\" y=\"" << num(label_y)
         << "\" text-anchor=\"end\">time (ms)</text>\n";
    for (double t = 0; t <= scale_.t_max + 1e-9; t += step) {
      const double x = scale_.x(t);
      if (grid)
        out_ << "<line class=\"grid\" x1=\"" << num(x) << "\" y1=\"" << num(lanes_top - 4) << "\" x2=\""
             << num(x) << "\" y2=\"" << num(lanes_bottom_ + 4) << "\"/>\n";
      out_ << "<text class=\"tick\" x=\"" << num(x) << "\" y=\"" << num(label_y)
           << "\" text-anchor=\"middle\">" << fixed_places(t / 1000.0, decimals) << "</text>\n";
    }
    out_ << "</g>\n";
  }

  void lanes_background() {
    out_ << "<g class=\"lanes\">\n";
    for (const auto& ln : lanes_) {
      out_ << "<rect class=\"lane\" x=\"" << num(scale_.x0) << "\" y=\"" << num(ln.y) << "\" width=\""
           << num(scale_.width) << "\" height=\"" << num(ln.height) << "\"/>\n";
      out_ << "<text class=\"name\" x=\"12\" y=\"" << num(ln.y + 13) << "\">" << ln.label << "</text>\n";
      out_ << "<text class=\"count\" x=\"12\" y=\"" << num(ln.y + 26) << "\">" << ln.detail << "</text>\n";
    }
    out_ << "</g>\n";
  }

  // ------------------------------------------------------------ every job drawn
  void detail_lanes() {
    out_ << "<g class=\"rings\">\n";
    for (std::size_t i = 0; i < spans_.size(); ++i) {
      const auto& span = spans_[i];
      if (!span.occupied_ring()) continue;
      const auto job = static_cast<std::size_t>(outcome_.runs[i].record.tag);
      const auto& ln = lanes_[lane_of_ring_[outcome_.runs[i].ring]];
      const double x1 = scale_.x(static_cast<double>(span.begin));
      const double w = std::max(scale_.x(static_cast<double>(span.stop)) - x1, 1.0);
      std::string cls = "run ";
      cls += span.replayed ? "replayed" : class_names[static_cast<std::size_t>(classify(outcome_.jobs[job]))];
      if (span.attempt > 1) cls += " replay";
      if (!span.completed && !span.replayed) cls += " cut";
      out_ << "<rect class=\"" << cls << "\" x=\"" << num(x1) << "\" y=\"" << num(ln.y + marker_strip + 1)
           << "\" width=\"" << num(w) << "\" height=\"" << num(ln.height - marker_strip - 3) << "\"><title>"
           << xml(g_.jobs[job].id) << " (attempt " << span.attempt << "): " << span.begin << "\xe2\x80\x93"
           << span.stop << " us, "
           << (span.completed  ? "completed"
               : span.replayed ? "cut by a reset, replayed"
                               : "cut short")
           << "</title></rect>\n";
      bar_label(g_.jobs[job].id, x1, w, ln.y + marker_strip + 1 + (ln.height - marker_strip - 3) / 2 + 3,
                span.replayed);
    }
    out_ << "</g>\n<g class=\"entities\">\n";
    for (std::size_t i = 0; i < g_.jobs.size(); ++i) {
      const auto& bar = bars_[i];
      const auto& result = outcome_.jobs[i];
      const auto& ln = lanes_[lane_of_entity_[g_.jobs[i].entity]];
      const double row_y = ln.y + marker_strip + static_cast<double>(bar.row) * detail_row_height;
      const double h = bar.ran ? detail_row_height - 3 : (detail_row_height - 3) / 2;
      const double y = bar.ran ? row_y : row_y + (detail_row_height - 3) / 4;
      const auto cls = classify(result);
      out_ << "<rect class=\"job " << class_names[static_cast<std::size_t>(cls)] << (bar.ran ? "" : " unrun")
           << "\" x=\"" << num(bar.x_from) << "\" y=\"" << num(y) << "\" width=\""
           << num(bar.x_to - bar.x_from) << "\" height=\"" << num(h) << "\"><title>" << job_tooltip(i)
           << "</title></rect>\n";
      if (bar.ran)
        bar_label(g_.jobs[i].id, bar.x_from, bar.x_to - bar.x_from, row_y + detail_row_height - 6, false);
      if (cls == outcome_class::error) {  // where a failure originated
        const double cx = bar.x_to, cy = row_y + (detail_row_height - 3) / 2;
        out_ << "<path class=\"fail-mark\" d=\"M" << num(cx - 3.5) << " " << num(cy - 3.5)
             << "l7 7m0 -7l-7 7\"/>\n";
      }
    }
    out_ << "</g>\n";
  }

  void bar_label(std::string_view id, double x, double width, double baseline, bool dark) {
    const double text_width = static_cast<double>(char_count(id)) * char_px * 0.9 + 4;
    if (text_width > width) return;
    out_ << "<text class=\"bar\" x=\"" << num(x + 2) << "\" y=\"" << num(baseline) << "\""
         << (dark ? " style=\"fill:#222\"" : "") << ">" << xml(id) << "</text>\n";
  }

  std::string job_tooltip(std::size_t i) const {
    const auto& result = outcome_.jobs[i];
    std::string text = xml(g_.jobs[i].id) + ": " + (result.error.empty() ? "ok" : xml(result.error));
    if (result.cause) text += " (cause " + xml(g_.jobs[*result.cause].id) + ")";
    text += "; queued " + std::to_string(result.queued_us);
    if (result.scheduled_us) text += ", run " + std::to_string(*result.scheduled_us);
    if (result.finished_us) text += ", finished " + std::to_string(*result.finished_us);
    text += " us; attempts " + std::to_string(result.attempts);
    return text;
  }

  // ------------------------------------------------------------ summarised
  // One stacked area per class: each class's path covers everything below its
  // cumulative top, drawn from the top class down so the lower ones show.
  // Failures stack at the bottom and ok on top, and a class present in a
  // column gets at least a pixel there (a failure two), so rare failures stay visible.
  // With `logarithmic`, a column's height is log(1 + total) / log(1 + full_scale)
  // of the lane, split between the classes in proportion; else total / full_scale.
  void stacked_paths(const lane& ln, const std::vector<std::vector<double>>& values,
                     const std::vector<std::string>& classes, double full_scale, bool logarithmic) {
    // Bottom to top: timed_out, error, caused, killed, cancelled, shutdown, replayed (rings only), ok.
    std::vector<std::size_t> order = {5, 1, 2, 3, 4, 6};
    if (values.size() > outcome_class_count) order.push_back(outcome_class_count);
    order.push_back(0);
    const std::size_t columns = values.empty() ? 0 : values[0].size();
    const double bottom = ln.y + ln.height;
    const double usable = ln.height - marker_strip - 1;
    std::vector<double> total(columns, 0.0), cumulative(columns, 0.0);
    for (const auto& row : values)
      for (std::size_t c = 0; c < columns; ++c) total[c] += row[c];
    std::vector<std::vector<long>> tops(order.size(), std::vector<long>(columns, 0));
    for (std::size_t level = 0; level < order.size(); ++level) {
      const auto& row = values[order[level]];
      for (std::size_t c = 0; c < columns; ++c) {
        cumulative[c] += row[c];
        double fraction = 0;
        if (full_scale > 0 && total[c] > 0) {
          const double column_height =
              logarithmic ? std::log1p(total[c]) / std::log1p(full_scale) : total[c] / full_scale;
          fraction = std::min(column_height, 1.0) * cumulative[c] / total[c];
        }
        const long below = level > 0 ? tops[level - 1][c] : 0L;
        const long at_least = row[c] > 0 ? (order[level] == 0 ? 1 : 2) : 0;  // failures: 2 pixels
        tops[level][c] = std::max(std::lround(fraction * usable), below + at_least);
      }
    }
    for (std::size_t level = order.size(); level-- > 0;) {
      const auto& row = values[order[level]];
      if (std::none_of(row.begin(), row.end(), [](double v) { return v > 0; })) continue;
      out_ << "<path class=\"" << classes[order[level]] << "\" d=\"M" << num(scale_.x0) << " " << num(bottom);
      long previous = -1;
      for (std::size_t c = 0; c < columns; ++c) {
        if (tops[level][c] != previous) {
          if (c > 0) out_ << "H" << num(scale_.x0 + static_cast<double>(c) * summary_column_px);
          out_ << "V" << num(bottom - static_cast<double>(tops[level][c]));
          previous = tops[level][c];
        }
      }
      out_ << "H" << num(scale_.x0 + static_cast<double>(columns) * summary_column_px) << "V" << num(bottom)
           << "Z\"/>\n";
    }
  }

  void summary_lanes() {
    const auto columns =
        static_cast<std::size_t>(std::max(1.0, std::floor(scale_.width / summary_column_px)));
    const double column_us = scale_.t_max * summary_column_px / scale_.width;
    auto column_of = [&](double t) {
      return std::min(columns - 1, static_cast<std::size_t>(std::max(0.0, std::floor(t / column_us))));
    };
    // Ring lanes: busy time per column, by class (the job's outcome, or replayed).
    constexpr std::size_t replayed_class = outcome_class_count;
    std::vector<std::string> run_classes(class_names.begin(), class_names.end());
    run_classes.emplace_back("replayed");
    std::vector<std::vector<std::vector<double>>> busy(
        lanes_.size(),
        std::vector<std::vector<double>>(run_classes.size(), std::vector<double>(columns, 0.0)));
    for (std::size_t i = 0; i < spans_.size(); ++i) {
      const auto& span = spans_[i];
      if (span.busy_us() == 0) continue;
      const auto job = static_cast<std::size_t>(outcome_.runs[i].record.tag);
      const std::size_t k =
          span.replayed ? replayed_class : static_cast<std::size_t>(classify(outcome_.jobs[job]));
      auto& row = busy[lane_of_ring_[outcome_.runs[i].ring]][k];
      const auto begin = static_cast<double>(span.begin), stop = static_cast<double>(span.stop);
      for (std::size_t c = column_of(begin); c < columns; ++c) {
        const double from = std::max(begin, static_cast<double>(c) * column_us);
        const double to = std::min(stop, static_cast<double>(c + 1) * column_us);
        if (to <= from && c > column_of(begin)) break;
        row[c] += std::max(0.0, to - from);
        if (to >= stop) break;
      }
    }
    out_ << "<g class=\"rings\">\n";
    for (std::size_t l = 0; l < first_entity_lane_; ++l)
      stacked_paths(lanes_[l], busy[l], run_classes,
                    column_us * static_cast<double>(lanes_[l].members.size()), false);
    out_ << "</g>\n";

    // Entity lanes: jobs finished per column, by outcome, on one scale (the
    // aggregated lane on its own).
    std::vector<std::string> job_classes(class_names.begin(), class_names.end());
    std::vector<std::vector<std::vector<double>>> finished(
        lanes_.size(),
        std::vector<std::vector<double>>(outcome_class_count, std::vector<double>(columns, 0.0)));
    for (std::size_t i = 0; i < g_.jobs.size(); ++i) {
      const auto& result = outcome_.jobs[i];
      const std::size_t c = column_of(static_cast<double>(result.finished_us.value_or(outcome_.end_us)));
      finished[lane_of_entity_[g_.jobs[i].entity]][static_cast<std::size_t>(classify(result))][c] += 1;
    }
    auto peak_of = [&](std::size_t l) {
      double peak = 0;
      for (std::size_t c = 0; c < columns; ++c) {
        double total = 0;
        for (std::size_t k = 0; k < outcome_class_count; ++k) total += finished[l][k][c];
        peak = std::max(peak, total);
      }
      return peak;
    };
    double shared_peak = 0;
    for (std::size_t l = first_entity_lane_; l < lanes_.size(); ++l)
      if (lanes_[l].members.size() == 1) shared_peak = std::max(shared_peak, peak_of(l));
    out_ << "<g class=\"entities\">\n";
    for (std::size_t l = first_entity_lane_; l < lanes_.size(); ++l) {
      const double peak = lanes_[l].members.size() == 1 ? shared_peak : peak_of(l);
      stacked_paths(lanes_[l], finished[l], job_classes, peak, logarithmic_counts_);
      out_ << "<text class=\"count\" x=\"12\" y=\"" << num(lanes_[l].y + 38)
           << "\">scale: " << fixed_places(peak, 0)
           << (logarithmic_counts_ ? " jobs/column, log" : " jobs/column") << "</text>\n";
    }
    out_ << "</g>\n";
  }

  // Jobs finished per column span orders of magnitude when failures cascade
  // (thousands of jobs fail at one instant): then the entity lanes use a log
  // scale, else a linear one. Decided on the busiest entity's columns.
  bool counts_need_log_scale() const {
    const auto columns =
        static_cast<std::size_t>(std::max(1.0, std::floor(scale_.width / summary_column_px)));
    const double column_us = scale_.t_max * summary_column_px / scale_.width;
    std::map<std::pair<std::size_t, std::size_t>, double> counts;  // (entity, column) -> jobs
    for (std::size_t i = 0; i < g_.jobs.size(); ++i) {
      const auto t = static_cast<double>(outcome_.jobs[i].finished_us.value_or(outcome_.end_us));
      const auto c = std::min(columns - 1, static_cast<std::size_t>(t / column_us));
      counts[{g_.jobs[i].entity, c}] += 1;
    }
    double peak = 0, sum = 0;
    for (const auto& [key, n] : counts) {
      peak = std::max(peak, n);
      sum += n;
    }
    const double mean = counts.empty() ? 0 : sum / static_cast<double>(counts.size());
    return peak > 10 * mean;
  }

  // ------------------------------------------------------------ markers
  // A vertical line across `ln` at `t`, labelled in the lane's top strip, to the
  // line's left or right, unless the label would overlap one already there.
  enum class side { left, right };
  void vertical_mark(std::string_view cls, double t, const lane& ln, std::string_view label, side where) {
    const double x = scale_.x(t);
    out_ << "<line class=\"" << cls << "\" x1=\"" << num(x) << "\" y1=\"" << num(ln.y - 2) << "\" x2=\""
         << num(x) << "\" y2=\"" << num(ln.y + ln.height + 2) << "\"/>\n";
    if (label.empty()) return;
    const double width = static_cast<double>(label.size()) * 5.2;
    const double from = where == side::right ? x + 6 : x - 6 - width;
    auto& taken = labels_of_lane_[ln.y];
    for (const auto& [a, b] : taken)
      if (from < b + 3 && a < from + width + 3) return;
    taken.emplace_back(from, from + width);
    out_ << "<text class=\"mark\" x=\"" << num(from) << "\" y=\"" << num(ln.y + 8.5) << "\">" << label
         << "</text>\n";
  }

  void timeout_triangle(double t, const lane& ln) {
    const double x = scale_.x(t);
    out_ << "<path class=\"timed_out timeout-tri\" d=\"M" << num(x - 4.5) << " " << num(ln.y - 3)
         << "h9l-4.5 7Z\"/>\n";
  }

  void markers() {
    // Summarised pictures keep markers only while they stay few.
    constexpr std::size_t summary_marker_limit = 400;
    out_ << "<g class=\"markers\">\n";
    const auto marks = marks_of(g_, outcome_, spans_);
    // Resets: the run_at of replays, per ring (several rings may share a lane).
    std::set<std::pair<std::size_t, std::uint64_t>> resets;
    for (const auto& reset : marks.resets) resets.emplace(lane_of_ring_[reset.ring], reset.at_us);
    if (!summarised_ || resets.size() <= summary_marker_limit)
      for (const auto& [l, t] : resets)
        vertical_mark("reset-mark", static_cast<double>(t), lanes_[l], "reset", side::right);
    // Timeouts: on the guilty job's entity lane and on the ring of its last run.
    if (!summarised_ || marks.timeouts.size() <= summary_marker_limit) {
      for (const auto& timeout : marks.timeouts) {
        const auto t = static_cast<double>(timeout.at_us);
        const auto& entity_lane = lanes_[lane_of_entity_[g_.jobs[timeout.job].entity]];
        vertical_mark("timeout-mark", t, entity_lane, "", side::left);
        timeout_triangle(t, entity_lane);
        if (timeout.ring) {
          const auto& ring_lane = lanes_[lane_of_ring_[*timeout.ring]];
          vertical_mark("timeout-mark", t, ring_lane, "timeout", side::left);
          timeout_triangle(t, ring_lane);
        }
      }
    }
    // Kills: the graph's actions, on the entity's lane.
    if (!summarised_ || g_.actions.size() <= summary_marker_limit) {
      for (const auto& action : g_.actions) {
        if (action.kind != action_kind::kill || action.entity >= lane_of_entity_.size()) continue;
        vertical_mark("kill-mark", static_cast<double>(action.at_us), lanes_[lane_of_entity_[action.entity]],
                      "kill", side::right);
      }
    }
    // The "nothing left to do" shutdown: across every lane.
    if (outcome_.shut_down_early) {
      const double x = scale_.x(static_cast<double>(outcome_.end_us));
      out_ << "<line class=\"shutdown-mark\" x1=\"" << num(x) << "\" y1=\"" << num(lanes_top - 4)
           << "\" x2=\"" << num(x) << "\" y2=\"" << num(lanes_bottom_ + 4) << "\"/>\n";
      out_ << "<text class=\"mark\" x=\"" << num(x - 3) << "\" y=\"" << num(lanes_bottom_ + 14)
           << "\" text-anchor=\"end\">nothing left to do: shutdown</text>\n";
    }
    out_ << "</g>\n";
  }

  // ------------------------------------------------------------ legend
  void legend() {
    out_ << "<g class=\"legend\">\n";
    double x = 12, y = legend_top_;
    auto next = [&](double width) {
      x += width;
      if (x > options_.width - 160) {
        x = 12;
        y += 18;
      }
    };
    auto swatch = [&](std::string_view cls, std::string_view text, double width) {
      out_ << "<rect class=\"" << cls << "\" x=\"" << num(x) << "\" y=\"" << num(y - 9)
           << "\" width=\"14\" height=\"10\"/>"
           << "<text x=\"" << num(x + 19) << "\" y=\"" << num(y) << "\">" << text << "</text>\n";
      next(width);
    };
    out_ << "<text class=\"name\" x=\"" << num(x) << "\" y=\"" << num(y) << "\">outcome:</text>\n";
    next(70);
    const std::array<double, outcome_class_count> widths = {40, 130, 190, 60, 85, 140, 200};
    for (std::size_t c = 0; c < outcome_class_count; ++c) swatch(class_names[c], class_legends[c], widths[c]);
    x = 12;
    y += 20;
    out_ << "<text class=\"name\" x=\"" << num(x) << "\" y=\"" << num(y) << "\">rings:</text>\n";
    next(70);
    swatch("replayed", "run cut by a reset (replayed later)", 240);
    if (!summarised_) {  // the summary has no single runs to outline
      swatch("ok replay", "a replay (attempt 2 or later)", 200);
      swatch("ok cut", "run cut short (timeout, ban, shutdown)", 260);
    }
    x = 12;
    y += 20;
    out_ << "<text class=\"name\" x=\"" << num(x) << "\" y=\"" << num(y) << "\">marks:</text>\n";
    next(70);
    auto line_entry = [&](std::string_view cls, std::string_view text, double width) {
      out_ << "<line class=\"" << cls << "\" x1=\"" << num(x + 7) << "\" y1=\"" << num(y - 11) << "\" x2=\""
           << num(x + 7) << "\" y2=\"" << num(y + 2) << "\"/><text x=\"" << num(x + 19) << "\" y=\"" << num(y)
           << "\">" << text << "</text>\n";
      next(width);
    };
    out_ << "<path class=\"timed_out\" d=\"M" << num(x + 2.5) << " " << num(y - 11) << "h9l-4.5 7Z\"/>";
    line_entry("timeout-mark", "timeout", 80);
    line_entry("kill-mark", "kill (action)", 110);
    line_entry("reset-mark", "ring reset", 100);
    if (!summarised_) {
      out_ << "<path class=\"fail-mark\" d=\"M" << num(x + 3.5) << " " << num(y - 8.5) << "l7 7m0 -7l-7 7\"/>"
           << "<text x=\"" << num(x + 19) << "\" y=\"" << num(y) << "\">failure originated here</text>\n";
      next(190);
    }
    line_entry("shutdown-mark", "nothing left to do: shutdown", 200);
    if (!summarised_) {
      out_ << "<rect class=\"cancelled\" x=\"" << num(x) << "\" y=\"" << num(y - 6.5)
           << "\" width=\"4\" height=\"6\"/>"
           << "<text x=\"" << num(x + 19) << "\" y=\"" << num(y)
           << "\">job that never ran (at its finish)</text>\n";
    }
    out_ << "</g>\n";
  }

  std::ostream& out_;
  const graph& g_;
  const run_outcome& outcome_;
  const svg_options& options_;
  const std::vector<run_span> spans_;
  bool summarised_ = false;
  bool logarithmic_counts_ = false;
  std::map<double, std::vector<std::pair<double, double>>>
      labels_of_lane_;  // marker labels placed, by lane top
  time_scale scale_;
  std::vector<lane> lanes_;
  std::size_t first_entity_lane_ = 0;
  std::vector<std::size_t> lane_of_ring_;
  std::vector<std::size_t> lane_of_entity_;
  std::vector<job_bar> bars_;
  std::map<std::size_t, std::size_t> rows_of_lane_;
  double lanes_bottom_ = lanes_top;
  double legend_top_ = lanes_top;
  double height_ = 0;
};

}  // namespace

void write_svg(std::ostream& out, const graph& g, const run_outcome& outcome, const svg_options& options) {
  svg_writer(out, g, outcome, options).write();
}

}  // namespace cosched::submit

// Reading a graph file, and the checks and orders over a whole graph: the run-length
// limit (check_run_length), push order, and printable() for messages. The reader
// itself is graph.cpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>
#include <vector>

#include "submit/graph.hpp"
#include "submit/graph_text.hpp"

namespace cosched::submit {

namespace detail {

// Names quoted in a message are cut so that a huge id cannot flood the terminal.
constexpr std::size_t max_quoted_bytes = 64;

std::string too_large() {
  return "larger than " + std::to_string(max_graph_bytes) + " bytes (256 MiB), the limit for a graph";
}

/// `text` (valid UTF-8: a JSON string or key) in double quotes, with quotes, backslashes
/// and control characters (C0, DEL, C1) escaped so that the message stays on one line
/// and printable, cut after max_quoted_bytes.
std::string quote(std::string_view text) {
  std::size_t length = text.size();
  const bool cut = length > max_quoted_bytes;
  if (cut) {
    length = max_quoted_bytes;
    // Back off to a character boundary so the message stays valid UTF-8.
    while (length > 0 && (static_cast<unsigned char>(text[length]) & 0xC0) == 0x80) --length;
  }
  constexpr std::string_view hex = "0123456789abcdef";
  std::string quoted = "\"";
  for (std::size_t i = 0; i < length; ++i) {
    const char c = text[i];
    auto byte = static_cast<unsigned char>(c);
    // A C1 control character (U+0080 to U+009F) is 0xC2 then its low byte.
    const bool c1 = byte == 0xC2 && i + 1 < length && static_cast<unsigned char>(text[i + 1]) < 0xA0 &&
                    static_cast<unsigned char>(text[i + 1]) >= 0x80;
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += c;
    } else if (byte < 0x20 || byte == 0x7f || c1) {
      if (c1) byte = static_cast<unsigned char>(text[++i]);
      quoted += "\\u00";
      quoted += hex[byte >> 4];
      quoted += hex[byte & 0xF];
    } else {
      quoted += c;
    }
  }
  quoted += '"';
  if (cut) quoted += "...";
  return quoted;
}

}  // namespace detail

using detail::quote;
using detail::too_large;

namespace {

/// Closes a file descriptor when the read is over, whichever way it ends.
class file_descriptor {
 public:
  explicit file_descriptor(int fd) : fd_(fd) {}
  file_descriptor(const file_descriptor&) = delete;
  file_descriptor& operator=(const file_descriptor&) = delete;
  ~file_descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void fail_to_read(const std::string& file_name, int error) {
  throw input_error(printable(file_name) + ": cannot read file: " + std::generic_category().message(error));
}

}  // namespace

std::string printable(std::string_view text) {
  constexpr std::string_view hex = "0123456789abcdef";
  auto escape = [&](std::string& out, unsigned char byte) {
    out += "\\x";
    out += hex[byte >> 4];
    out += hex[byte & 0xF];
  };
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      if (lead < 0x20 || lead == 0x7f)
        escape(out, lead);
      else
        out += static_cast<char>(lead);
      ++i;
      continue;
    }
    // The length of the sequence and the range of its first continuation byte
    // (which excludes overlong forms, surrogates and code points past U+10FFFF).
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF)
      length = 2;
    else if (lead == 0xE0)
      length = 3, low = 0xA0;
    else if (lead == 0xED)
      length = 3, high = 0x9F;
    else if (lead >= 0xE1 && lead <= 0xEF)
      length = 3;
    else if (lead == 0xF0)
      length = 4, low = 0x90;
    else if (lead >= 0xF1 && lead <= 0xF3)
      length = 4;
    else if (lead == 0xF4)
      length = 4, high = 0x8F;
    bool valid = length != 0 && i + length <= text.size();
    for (std::size_t k = 1; valid && k < length; ++k) {
      const auto byte = static_cast<unsigned char>(text[i + k]);
      valid = k == 1 ? byte >= low && byte <= high : byte >= 0x80 && byte <= 0xBF;
    }
    if (!valid) {
      escape(out, lead);
      ++i;
    } else if (lead == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) {
      escape(out, lead);  // C1 control characters, U+0080 to U+009F
      escape(out, static_cast<unsigned char>(text[i + 1]));
      i += 2;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

std::uint64_t ring_time_us(const job_spec& job, const scheduler_spec& scheduler) {
  const std::uint64_t timeout = scheduler.timeout_us.value_or(0);
  switch (job.fault.kind) {
    case fault_kind::slow:
      return job.fault.slow_us;  // reports progress: extended, never cut
    case fault_kind::hang:
      return timeout;
    case fault_kind::body_throws:
      return 0;  // never runs
    case fault_kind::none:
    case fault_kind::error:
      break;
  }
  return scheduler.timeout_us ? std::min(job.duration_us, timeout) : job.duration_us;
}

namespace {

/// The latest submit_at_us or at_us, plus the timeout: where the sum of ring times starts.
std::uint64_t run_start_bound(const graph& g) {
  std::uint64_t latest = 0;
  for (const job_spec& job : g.jobs) latest = std::max(latest, job.submit_at_us);
  for (const action_spec& action : g.actions) latest = std::max(latest, action.at_us);
  return latest + g.scheduler.timeout_us.value_or(0);  // each at most 1e15
}

}  // namespace

std::uint64_t latest_instant_us(const graph& g) {
  std::uint64_t latest = run_start_bound(g);
  for (const job_spec& job : g.jobs) {
    // Both terms are at most max_run_us + 1e15 here: no wrap.
    latest += ring_time_us(job, g.scheduler);
    if (latest > max_run_us) return max_run_us + 1;
  }
  return latest;
}

void check_run_length(const graph& g, std::string_view file_name) {
  const std::uint64_t start = run_start_bound(g);
  std::uint64_t latest = start;
  for (std::size_t index = 0; index < g.jobs.size(); ++index) {
    const job_spec& job = g.jobs[index];
    latest += ring_time_us(job, g.scheduler);
    if (latest <= max_run_us) continue;
    const bool by_fault = job.fault.kind == fault_kind::slow || job.fault.kind == fault_kind::hang;
    throw input_error(printable(file_name) + ": jobs[" + std::to_string(index) + "] (id " + quote(job.id) +
                      "): field " + (by_fault ? quote("fault") : quote("duration_us")) +
                      ": the run could last until " + std::to_string(latest) + " us, past the limit of " +
                      std::to_string(max_run_us) + " us: the latest submit_at_us or at_us plus timeout_us (" +
                      std::to_string(start) +
                      ") plus the ring time of jobs[0] to this one, run one after another");
  }
}

graph load_graph(const std::filesystem::path& path) {
  const std::string file_name = path.string();
  // POSIX calls rather than iostreams: they say why a read failed (errno).
  const file_descriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) fail_to_read(file_name, errno);
  struct stat status {};
  if (::fstat(file.get(), &status) == 0 && S_ISREG(status.st_mode) &&
      static_cast<std::uintmax_t>(status.st_size) > max_graph_bytes) {
    throw input_error(printable(file_name) + ": " + too_large());
  }
  // A device or a pipe has no size: the read stops one byte past the limit, or at a
  // NUL byte (parse_graph reports it; /dev/zero is not read to the end of memory).
  std::string text;
  std::array<char, 65536> buffer;
  for (;;) {
    const std::size_t wanted = std::min(buffer.size(), max_graph_bytes + 1 - text.size());
    const ssize_t count = ::read(file.get(), buffer.data(), wanted);
    if (count == 0) break;
    if (count < 0) {
      if (errno == EINTR) continue;
      fail_to_read(file_name, errno);
    }
    const std::string_view chunk(buffer.data(), static_cast<std::size_t>(count));
    text.append(chunk);
    if (text.size() > max_graph_bytes) throw input_error(printable(file_name) + ": " + too_large());
    if (chunk.find('\0') != std::string_view::npos) break;
  }
  return parse_graph(text, file_name);
}

std::vector<std::size_t> push_order(const graph& g) {
  std::vector<std::size_t> order(g.jobs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&g](std::size_t a, std::size_t b) {
    return g.jobs[a].submit_at_us < g.jobs[b].submit_at_us;
  });
  return order;
}

}  // namespace cosched::submit

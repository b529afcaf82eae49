// cosched-scale-bench: memory and time per job with up to a million jobs live at
// once, in virtual time. It prints figures; it asserts nothing about them.
//
// Every measurement runs in a child process of its own, so that each peak RSS is
// that of one measurement. For each size N (default 100,000 and 1,000,000):
//  - submit: what `cosched-submit --clock virtual --generate jobs=N` does with the
//    generator's default mix (4 entities, 2 dependencies per job among the 256
//    jobs before it, durations of 1-20 us, 8 credits; seed 1): the graph is made,
//    run, and its summary written (to nowhere). Every job is pushed at time 0, so
//    all N are live in the scheduler at once. Figures: peak RSS (getrusage), the
//    heap the graph takes, wall time.
//  - scheduler: N jobs pushed at one instant to one entity on a virtual ring, each
//    declaring the finished fence of the job before it as its dependency (kept,
//    as cosched-submit keeps them, and declared as it declares a graph's deps).
//    Figures: the heap in use per job once all are taken (glibc's mallinfo2: the
//    scheduler's record of the job, its frame and its declared dependency, with
//    the allocator's headers), wall time per job from the first push to the last
//    retirement.
// Memory per job is marginal: the difference of the peaks of the largest and the
// smallest size over the difference of their job counts, so that what does not
// grow with the jobs (the program, its libraries) does not count.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "cosched/cosched.hpp"
#include "cosched/detail/pool.hpp"
#include "cosched/testing.hpp"
#include "submit/generate.hpp"
#include "submit/runner.hpp"

namespace {

using cosched::sim::command;
using clock_type = std::chrono::steady_clock;

// What a child measured (sent to the parent through a pipe).
struct figures {
  bool ok = false;
  double seconds = 0;            // wall time of the whole measurement
  double run_seconds = 0;        // submit: the run alone; scheduler: push to last retirement
  std::uint64_t heap_bytes = 0;  // submit: the graph; scheduler: every job taken
  long peak_rss_kb = 0;          // filled in by the parent (wait4)
};

std::uint64_t heap_in_use() {
  const struct mallinfo2 info = ::mallinfo2();
  return info.uordblks + info.hblkhd;
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// An output stream that discards what it is given (cosched-submit's summary goes to a terminal).
class discard_buffer final : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

figures measure_submit(std::size_t jobs) {
  figures f;
  const auto start = clock_type::now();
  cosched::submit::generate_spec spec;
  spec.jobs = jobs;
  const std::uint64_t before = heap_in_use();
  const cosched::submit::graph g = cosched::submit::generate_graph(spec, 1);
  f.heap_bytes = heap_in_use() - before;
  cosched::submit::check_run_length(g, "--generate");
  const auto run_start = clock_type::now();
  const cosched::submit::run_outcome outcome = cosched::submit::run_graph(g, {});
  f.run_seconds = seconds_since(run_start);
  discard_buffer nowhere;
  std::ostream out(&nowhere);
  cosched::submit::write_summary(out, g, outcome);
  f.seconds = seconds_since(start);
  std::size_t succeeded = 0;
  for (const auto& job : outcome.jobs) succeeded += job.error.empty();
  f.ok = succeeded == jobs;
  return f;
}

// A job's body as cosched-submit's: it holds what makes its command and its
// index, and runs once its declared dependencies have signalled.
struct job_kind {
  cosched::sim::time_us duration_us = 1;
};
cosched::job<command> body(const job_kind& kind, std::uint32_t index) {
  co_return command{kind.duration_us, {}, index};
}

figures measure_scheduler(std::size_t jobs) {
  figures f;
  const auto start = clock_type::now();
  asio::io_context io(1);
  cosched::sim::virtual_clock clock;
  cosched::sim::virtual_ring ring(clock);
  cosched::sim::virtual_timers timers(clock);
  cosched::scheduler<command> sched(io.get_executor(), ring, {.credit_limit = 8, .timers = &timers});
  auto queue = sched.make_entity();
  std::vector<cosched::fence> finished(jobs);
  const std::uint64_t before = heap_in_use();
  const auto run_start = clock_type::now();
  const job_kind kind;
  for (std::size_t i = 0; i < jobs; ++i) {
    std::vector<cosched::fence> after;
    if (i > 0) after.push_back(finished[i - 1]);
    finished[i] = queue.push(body(kind, static_cast<std::uint32_t>(i)), {.after = std::move(after)}).finished;
  }
  cosched::sim::virtual_clock::settle(io);  // every job taken, each waiting for the one before
  f.heap_bytes = heap_in_use() - before;
  clock.run(io);
  f.run_seconds = seconds_since(run_start);
  bool all_ok = true;
  for (const auto& done : finished) all_ok = all_ok && done.signalled() && !done.error();
  finished.clear();
  const auto down = sched.shutdown(std::chrono::nanoseconds(0));
  clock.run(io);
  f.ok = all_ok && down.signalled();
  f.seconds = seconds_since(start);
  return f;
}

// The parent runs on one thread (the measurements run in the children, which end
// with _exit): exit() races with nothing.
// NOLINTBEGIN(concurrency-mt-unsafe)

// Runs `measure(jobs)` in a child process; its figures and its peak RSS.
template <class Measure>
figures in_child(Measure measure, std::size_t jobs) {
  int fds[2];
  if (::pipe(fds) != 0) {
    std::perror("cosched-scale-bench: pipe");
    std::exit(1);
  }
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("cosched-scale-bench: fork");
    std::exit(1);
  }
  if (pid == 0) {
    ::close(fds[0]);
    const figures f = measure(jobs);
    const bool written = ::write(fds[1], &f, sizeof f) == static_cast<ssize_t>(sizeof f);
    ::_exit(written ? 0 : 1);
  }
  ::close(fds[1]);
  figures f;
  const bool got = ::read(fds[0], &f, sizeof f) == static_cast<ssize_t>(sizeof f);
  ::close(fds[0]);
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "cosched-scale-bench: the measurement of %zu jobs failed\n", jobs);
    std::exit(1);
  }
  f.peak_rss_kb = usage.ru_maxrss;
  return f;
}

std::vector<std::size_t> parse_sizes(const char* text) {
  std::vector<std::size_t> sizes;
  std::stringstream list(text);
  for (std::string item; std::getline(list, item, ',');) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || n < 1000 || n > 10'000'000) {
      std::fprintf(stderr, "cosched-scale-bench: --jobs takes sizes from 1000 to 10000000, got '%s'\n",
                   item.c_str());
      std::exit(2);
    }
    sizes.push_back(static_cast<std::size_t>(n));
  }
  if (sizes.size() < 2) {
    std::fprintf(stderr,
                 "cosched-scale-bench: --jobs needs at least two sizes (memory per job is marginal)\n");
    std::exit(2);
  }
  return sizes;
}

// NOLINTEND(concurrency-mt-unsafe)

std::string thousands(std::size_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes = {100'000, 1'000'000};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--jobs" && i + 1 < argc) {
      sizes = parse_sizes(argv[++i]);
    } else if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: cosched-scale-bench [--jobs N,N[,...]]\n"
          "  memory and time per job in virtual time, each size in a child process (default "
          "100000,1000000):\n"
          "  cosched-submit's run of a generated graph (peak RSS, time) and the scheduler alone (heap per\n"
          "  live job, time); memory per job is marginal between the smallest and the largest size\n");
      return 0;
    } else {
      std::fprintf(stderr, "cosched-scale-bench: unknown argument '%s' (see --help)\n", arg.c_str());
      return 2;
    }
  }
#ifndef NDEBUG
  std::printf("WARNING: built without NDEBUG: this is not a release build\n");
#endif
  std::printf("cosched-scale-bench: virtual time; every job pushed at time 0 (all live at once)\n");
  std::printf(
      "submit: cosched-submit --clock virtual --generate jobs=N (entities=4, deps=2, duration=1-20,\n"
      "        credits=8, seed 1): graph made, run, summary written\n");
  std::printf(
      "scheduler: N jobs on one entity, each declaring the one before as its dependency, on a virtual "
      "ring\n\n");
  std::printf("%12s  %14s  %14s  %12s  %12s  %16s  %14s\n", "jobs", "submit RSS", "submit time", "graph heap",
              "per job", "scheduler heap", "per job");
  std::vector<figures> submit, sched;
  for (std::size_t n : sizes) {
    submit.push_back(in_child(measure_submit, n));
    sched.push_back(in_child(measure_scheduler, n));
    const auto& s = submit.back();
    const auto& c = sched.back();
    if (!s.ok || !c.ok) {
      std::fprintf(stderr, "cosched-scale-bench: a job of the %zu-job run did not succeed\n", n);
      return 1;
    }
    std::printf("%12s  %11.1f MB  %12.2f s  %9.1f MB  %10.0f B  %13.1f MB  %12.0f B\n", thousands(n).c_str(),
                double(s.peak_rss_kb) / 1024.0, s.seconds, double(s.heap_bytes) / 1048576.0,
                double(s.heap_bytes) / double(n), double(c.heap_bytes) / 1048576.0,
                double(c.heap_bytes) / double(n));
  }
  const std::size_t low = 0, high = sizes.size() - 1;
  const double jobs = double(sizes[high] - sizes[low]);
  const double rss_per_job = double(submit[high].peak_rss_kb - submit[low].peak_rss_kb) * 1024.0 / jobs;
  const double time_per_job = (submit[high].seconds - submit[low].seconds) / jobs;
  const double graph_per_job = double(submit[high].heap_bytes) / double(sizes[high]);
  const double scheduler_per_job = double(sched[high].heap_bytes) / double(sizes[high]);
  const double scheduler_time = sched[high].run_seconds / double(sizes[high]);
  std::printf("\nmemory per job (peak RSS, marginal from %s to %s jobs): %.0f B\n",
              thousands(sizes[low]).c_str(), thousands(sizes[high]).c_str(), rss_per_job);
  std::printf(
      "  of which the graph: %.0f B; the scheduler, per live job: %.0f B (its job block %zu B in a %zu B\n"
      "  pool block, its declared dependency inline, and the job's frame, with the allocator's headers);\n"
      "  the rest (the run's own records, the rings' run logs): %.0f B\n",
      graph_per_job, scheduler_per_job, sizeof(cosched::detail::job_block),
      cosched::detail::pool_block_size(sizeof(cosched::detail::job_block)),
      rss_per_job - graph_per_job - scheduler_per_job);
  std::printf(
      "time per job (wall, marginal, whole cosched-submit run): %.2f us; the scheduler alone, push to\n"
      "  retirement at %s jobs: %.2f us\n",
      time_per_job * 1e6, thousands(sizes[high]).c_str(), scheduler_time * 1e6);
  return 0;
}

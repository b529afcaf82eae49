// cosched-bench: measures cosched against its floors and peers in one run and
// prints every figure and ratio (see --help). Groups:
//   dag       100k-job throughput (indep, 4-dependency DAG) vs oneTBB flow_graph
//             and vs a minimal coroutine scheduler on the same graphs (the floor)
//   wake      fence signal -> waiting job resumed, vs a bare io_uring loop and a
//             waiter thread posting to the io_context
//   inflight  scheduler CPU per completion with 1..8192 fences in flight, vs poll()
//   gpu       real GPU work on virtio-gpu with virgl (only with --only gpu): latency,
//             throughput and CPU per job vs a bare io_uring loop and a submit thread
// Timings are medians over repetitions: machines are noisy, and
// peers are interleaved within each repetition so that load drift hits all alike.
#include <malloc.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench_dag.hpp"
#include "bench_gpu.hpp"
#include "bench_inflight.hpp"
#include "bench_util.hpp"
#include "bench_wake.hpp"
#include "cosched/version.hpp"

namespace cosched_bench {
namespace {

// ------------------------------------------------------------------ command line

struct cli {
  config cfg;
  std::set<std::string> only;
  std::string json_path;  // "" none, "-" stdout
};

void usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: cosched-bench [--quick] [--reps N] [--only GROUP[,GROUP...]] [--json FILE|-] [--version]\n"
      "  groups: dag, wake, inflight (default: these three), gpu (real GPU work on a\n"
      "          virtio-gpu device with virgl: run it there, e.g. in tests/drm-vm/run.sh --gpu virgl)\n"
      "          dag runs cosched, oneTBB flow_graph and the coroutine floor (a minimal\n"
      "          coroutine scheduler) on the same graphs\n"
      "  --quick    short run (1 rep, fewer samples): checks that everything runs\n"
      "  --reps N   repetitions per measurement (default 5); medians are reported\n"
      "  --json F   also write one JSON object with every figure to F ('-': stdout,\n"
      "             and the readable report goes to stderr)\n"
      "  env COSCHED_BENCH_NOPIN=1: do not pin the scheduler (CPU 0) and device (CPU 1) threads\n");
}

// Runs first in main, before any thread starts: exit() and getenv race with nothing.
// NOLINTBEGIN(concurrency-mt-unsafe)
cli parse(int argc, char** argv) {
  cli c;
  bool reps_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "cosched-bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--quick") {
      c.cfg.quick = true;
    } else if (arg == "--reps") {
      c.cfg.reps = std::atoi(value().c_str());
      reps_given = true;
      if (c.cfg.reps < 1) {
        std::fprintf(stderr, "cosched-bench: --reps must be at least 1\n");
        std::exit(2);
      }
    } else if (arg == "--only") {
      std::stringstream list(value());
      for (std::string name; std::getline(list, name, ',');) {
        if (name != "dag" && name != "wake" && name != "inflight" && name != "gpu") {
          std::fprintf(stderr, "cosched-bench: unknown group '%s' (dag, wake, inflight, gpu)\n",
                       name.c_str());
          std::exit(2);
        }
        c.only.insert(name);
      }
    } else if (arg == "--json") {
      c.json_path = value();
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (arg == "--version") {
      std::printf("cosched-bench %s\n", cosched::version);
      std::exit(0);
    } else {
      std::fprintf(stderr, "cosched-bench: unknown argument '%s'\n", arg.c_str());
      usage(stderr);
      std::exit(2);
    }
  }
  if (c.cfg.quick && !reps_given) c.cfg.reps = 1;
  const char* nopin = std::getenv("COSCHED_BENCH_NOPIN");
  c.cfg.pin = !(nopin && *nopin && std::string(nopin) != "0");
  c.cfg.cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return c;
}
// NOLINTEND(concurrency-mt-unsafe)

// ------------------------------------------------------------------ load on the machine

// How busy the rest of the machine was during the run: the figures are only
// comparable between runs with similar load.
struct load_probe {
  struct sample {
    double busy = 0, steal = 0, wall = 0, self = 0;
  };
  static sample take() {
    sample s;
    if (std::FILE* f = std::fopen("/proc/stat", "r")) {
      unsigned long long v[10] = {};
      if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                      &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
        const double tick = double(sysconf(_SC_CLK_TCK));
        // user nice system [idle iowait] irq softirq steal
        s.busy = double(v[0] + v[1] + v[2] + v[5] + v[6]) / tick;
        s.steal = double(v[7]) / tick;
      }
      std::fclose(f);
    }
    s.wall = double(now_ns()) / 1e9;
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    s.self = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return s;
  }
};

// ------------------------------------------------------------------ targets

struct target {
  const char* key;              // JSON key of the ratio
  const char* what;             // how it is computed
  const char* num;              // numerator figure
  const char* den;              // denominator figure
  bool at_least;                // ratio >= bound (else ratio <= bound, or < bound when strict)
  std::optional<double> bound;  // none: the ratio is context (not in targets_met)
  bool strict;
  const char* unit;
};

const target targets[] = {
    {"ratio_indep_vs_tbb", "cosched / oneTBB, indep jobs/s", "indep_jobs_per_s", "tbb_indep_jobs_per_s", true,
     2.0, false, "x"},
    {"ratio_dag_vs_tbb", "cosched / oneTBB, dag4 jobs/s", "dag_jobs_per_s", "tbb_dag_jobs_per_s", true, 2.0,
     false, "x"},
    {"ratio_sp_indep_vs_tbb", "single_producer / oneTBB, indep", "sp_indep_jobs_per_s",
     "tbb_indep_jobs_per_s", true, 4.0, false, "x"},
    {"ratio_sp_dag_vs_tbb", "single_producer / oneTBB, dag4", "sp_dag_jobs_per_s", "tbb_dag_jobs_per_s", true,
     4.0, false, "x"},
    {"ratio_sp_indep_vs_floor", "single_producer / floor, indep", "sp_indep_jobs_per_s",
     "floor_indep_jobs_per_s", true, 1.0 / 3.0, false, "x"},
    {"ratio_sp_dag_vs_floor", "single_producer / floor, dag4", "sp_dag_jobs_per_s", "floor_dag_jobs_per_s",
     true, 1.0 / 3.0, false, "x"},
    {"ratio_indep_vs_floor", "cosched / floor, indep jobs/s", "indep_jobs_per_s", "floor_indep_jobs_per_s",
     true, std::nullopt, false, "x"},
    {"ratio_dag_vs_floor", "cosched / floor, dag4 jobs/s", "dag_jobs_per_s", "floor_dag_jobs_per_s", true,
     std::nullopt, false, "x"},
    {"ratio_wake_vs_raw_uring", "wake p50 / raw io_uring p50", "wake_p50_us", "raw_uring_wake_p50_us", false,
     1.3, false, "x"},
    {"ratio_wake_vs_thread_per_queue", "wake p50 / thread-per-queue p50", "wake_p50_us",
     "thread_per_queue_wake_p50_us", false, 1.0, true, "x"},
    {"ratio_inflight_8192_vs_64", "inflight cpu N=8192 / N=64", "inflight_cpu_us_8192", "inflight_cpu_us_64",
     false, 1.5, false, "x"},
    {"ratio_poll_vs_inflight_8192", "poll() cpu / cosched cpu, N=8192", "poll_inflight_cpu_us_8192",
     "inflight_cpu_us_8192", true, 50.0, false, "x"},
    {"ratio_gpu_latency_vs_bare", "gpu job latency p50 / bare loop p50", "gpu_latency_p50_us",
     "gpu_bare_latency_p50_us", false, 1.1, false, "x"},
    {"ratio_gpu_latency_vs_thread", "gpu job latency p50 / submit thread", "gpu_latency_p50_us",
     "gpu_thread_latency_p50_us", false, 1.0, true, "x"},
    {"ratio_gpu_throughput_vs_bare", "2000 gpu jobs: wall / bare loop wall", "gpu_throughput_ms",
     "gpu_bare_throughput_ms", false, 1.1, false, "x"},
};

// Absolute floors measured for a 2-core machine; shown for context only,
// since absolute figures drift with the load of the machine.
struct floor_target {
  const char* key;
  const char* what;
  bool at_least;
  double bound;
  double scale;
  const char* unit;
};
const floor_target floors[] = {
    {"indep_jobs_per_s", "indep throughput", true, 10e6, 1e-6, "M jobs/s"},
    {"dag_jobs_per_s", "dag4 throughput", true, 7e6, 1e-6, "M jobs/s"},
    {"wake_p50_us", "wake p50", false, 9.0, 1, "us"},
    {"wake_p99_us", "wake p99", false, 25.0, 1, "us"},
    {"inflight_cpu_us_8192", "cpu per completion, N=8192", false, 5.0, 1, "us"},
};

std::optional<bool> evaluate(const target& t, const results& res, std::optional<double>& ratio) {
  const auto a = res.get(t.num), b = res.get(t.den);
  ratio.reset();
  if (!a || !b || *b <= 0) return std::nullopt;
  ratio = *a / *b;
  if (!t.bound) return std::nullopt;
  if (t.at_least) return *ratio >= *t.bound;
  return t.strict ? *ratio < *t.bound : *ratio <= *t.bound;
}

void report_targets(std::FILE* out, results& res,
                    std::vector<std::pair<std::string, std::optional<bool>>>& met) {
  std::fprintf(out, "\n[ratios] (targets of the issue)\n");
  for (const auto& t : targets) {
    std::optional<double> ratio;
    const auto ok = evaluate(t, res, ratio);
    if (t.bound) met.push_back({t.key, ok});
    if (ratio)
      res.set(t.key, *ratio);
    else
      res.declare(t.key);
    char bound[32] = "none";
    if (t.bound)
      std::snprintf(bound, sizeof bound, "%s %.2g", t.at_least ? ">=" : (t.strict ? "<" : "<="), *t.bound);
    if (!ratio) {
      std::fprintf(out, "  %-36s %9s   target %-7s  not measured\n", t.what, "-", bound);
    } else {
      std::fprintf(out, "  %-36s %8.2f%s   target %-7s  %s\n", t.what, *ratio, t.unit, bound,
                   !ok   ? "(context)"
                   : *ok ? "MET"
                         : "NOT MET");
    }
  }
  std::fprintf(out, "\n[floors] absolute floors for a 2-core machine (context; they drift with host load)\n");
  for (const auto& f : floors) {
    const auto v = res.get(f.key);
    char bound[32];
    std::snprintf(bound, sizeof bound, "%s %g", f.at_least ? ">=" : "<=", f.bound * f.scale);
    if (!v) {
      std::fprintf(out, "  %-36s %9s   target %-7s %-8s not measured\n", f.what, "-", bound, f.unit);
      continue;
    }
    const bool ok = f.at_least ? *v >= f.bound : *v <= f.bound;
    std::fprintf(out, "  %-36s %9.2f   target %-7s %-8s %s\n", f.what, *v * f.scale, bound, f.unit,
                 ok ? "met" : "not met");
  }
}

// ------------------------------------------------------------------ JSON

std::string json_number(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", *v);
  return buf;
}

// One object on one line, keys in a fixed order.
std::string to_json(const cli& c, const results& res,
                    const std::vector<std::pair<std::string, std::optional<bool>>>& met, double other_load,
                    double steal) {
  std::string s = "{";
  bool first = true;
  auto key = [&](const std::string& k) {
    if (!first) s += ", ";
    first = false;
    s += '"';
    s += k;
    s += "\": ";
  };
  for (const auto& [k, v] : res.all()) {
    key(k);
    s += json_number(v);
  }
  key("targets_met");
  s += "{";
  for (std::size_t i = 0; i < met.size(); ++i) {
    if (i) s += ", ";
    s += '"';
    s += met[i].first;
    s += "\": ";
    s += met[i].second ? (*met[i].second ? "true" : "false") : "null";
  }
  s += "}";
  key("reps");
  s += std::to_string(c.cfg.reps);
  key("quick");
  s += c.cfg.quick ? "true" : "false";
  key("pinned");
  s += c.cfg.pin ? "true" : "false";
  key("cpus");
  s += std::to_string(c.cfg.cpus);
  key("other_load_cores");
  s += json_number(other_load);
  key("steal_cores");
  s += json_number(steal);
  s += "}\n";
  return s;
}

}  // namespace
}  // namespace cosched_bench

int main(int argc, char** argv) {
  using namespace cosched_bench;
  const cli c = parse(argc, argv);
  // Keep freed memory in the heap (no trimming, no per-allocation mmap): every
  // repetition then reuses pages that are already mapped, for every peer alike.
  // On a virtual machine a first-touch page fault costs ~12 us, so a cold heap turns
  // the dag figures into a page-fault benchmark.
  // (Before any thread starts: mallopt is not thread-safe.)
  mallopt(M_TRIM_THRESHOLD, 1 << 30);   // NOLINT(concurrency-mt-unsafe): see above
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // NOLINT(concurrency-mt-unsafe): see above
  const bool json_stdout = c.json_path == "-";
  std::FILE* out = json_stdout ? stderr : stdout;
  auto wanted = [&](const char* group) {
    // gpu needs a virgl device: only when asked for.
    return c.only.empty() ? std::string(group) != "gpu" : c.only.count(group) != 0;
  };

  // Every figure has a key, whether or not its group runs.
  results res;
  for (const char* k : {"indep_jobs_per_s",
                        "dag_jobs_per_s",
                        "sp_indep_jobs_per_s",
                        "sp_dag_jobs_per_s",
                        "tbb_indep_jobs_per_s",
                        "tbb_dag_jobs_per_s",
                        "floor_indep_jobs_per_s",
                        "floor_dag_jobs_per_s",
                        "cached_indep_jobs_per_s",
                        "cached_dag_jobs_per_s",
                        "cached_sp_indep_jobs_per_s",
                        "cached_sp_dag_jobs_per_s",
                        "cached_tbb_indep_jobs_per_s",
                        "cached_tbb_dag_jobs_per_s",
                        "cached_floor_indep_jobs_per_s",
                        "cached_floor_dag_jobs_per_s",
                        "wake_p50_us",
                        "wake_p99_us",
                        "wake_asio_p50_us",
                        "wake_asio_p99_us",
                        "raw_uring_wake_p50_us",
                        "raw_uring_wake_p99_us",
                        "raw_uring_defer_wake_p50_us",
                        "thread_per_queue_wake_p50_us",
                        "thread_per_queue_wake_p99_us"})
    res.declare(k);
  for (const char* prefix : {"inflight_cpu_us_", "inflight_wall_us_", "inflight_asio_cpu_us_",
                             "raw_uring_inflight_cpu_us_", "poll_inflight_cpu_us_", "poll_inflight_wall_us_"})
    for (std::size_t n : inflight::sizes) {
      std::string key(prefix);
      key += std::to_string(n);
      res.declare(key);
    }

  // The main thread is the scheduler thread of every measurement.
  pin_to(c.cfg, 0);
  std::fprintf(
      out, "cosched-bench: %ld CPUs, %s, %d rep(s)%s; scheduler thread on CPU 0, device thread on CPU 1%s\n",
      c.cfg.cpus,
#if defined(__clang__)
      "clang++ " __clang_version__,
#elif defined(__GNUC__)
      "g++ " __VERSION__,
#else
      "unknown compiler",
#endif
      c.cfg.reps, c.cfg.quick ? " (quick)" : "", c.cfg.pin ? "" : " (NOT pinned: COSCHED_BENCH_NOPIN)");
#ifndef NDEBUG
  std::fprintf(out, "WARNING: built without NDEBUG: this is not a release build\n");
#endif
  std::fflush(out);

  const auto before = load_probe::take();
  if (wanted("dag")) dag::run_group(c.cfg, res, out);
  if (wanted("wake")) wake::run_group(c.cfg, res, out);
  if (wanted("inflight")) inflight::run_group(c.cfg, res, out);
  if (wanted("gpu"))
    gpu::run_group(c.cfg, res, out);
  else
    for (const char* k : gpu::keys) res.declare(k);
  const auto after = load_probe::take();

  std::vector<std::pair<std::string, std::optional<bool>>> met;
  report_targets(out, res, met);

  const double wall = after.wall - before.wall;
  const double other =
      wall > 0 ? std::max(0.0, (after.busy - before.busy) - (after.self - before.self)) / wall : 0;
  const double steal = wall > 0 ? (after.steal - before.steal) / wall : 0;
  std::fprintf(out,
               "\n[load] %.1f s; other processes used %.2f cores, host steal %.2f cores during the run\n",
               wall, other, steal);
  std::fflush(out);

  if (!c.json_path.empty()) {
    const std::string json = to_json(c, res, met, other, steal);
    if (json_stdout) {
      std::fputs(json.c_str(), stdout);
      std::fflush(stdout);
    } else {
      std::ofstream file(c.json_path);
      file << json;
      if (!file) {
        std::fprintf(stderr, "cosched-bench: cannot write %s\n", c.json_path.c_str());
        return 1;
      }
    }
  }
  return 0;
}

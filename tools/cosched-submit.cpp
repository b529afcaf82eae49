// cosched-submit: runs a job graph (JSON, or a generated one) through the
// scheduler on a simulated GPU (sim, or the drm backend's host engine on real
// kernel syncobjs) or as real GPU work (virtgpu) and reports each job's outcome.
// Exit 0: the run completed; 2: unusable input (nothing ran); 1: internal failure.
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <system_error>

#include <CLI/CLI.hpp>

#include "cosched/log.hpp"
#include "cosched/version.hpp"
#include "submit/generate.hpp"
#include "submit/graph.hpp"
#include "submit/runner.hpp"
#include "submit/svg.hpp"
#include "submit/trace.hpp"

namespace {

constexpr int exit_completed = 0;
constexpr int exit_internal = 1;
constexpr int exit_unusable = 2;

// Above this many jobs the table is left out (use --results).
constexpr std::size_t table_limit = 1000;

// One output file (--save-graph, --results, --trace, --svg): opened before the run,
// so that a bad path is unusable input (exit 2) and not a run lost at the end.
struct output {
  std::string option;  // "--results"
  std::string path;    // "-" for stdout; empty when not asked for
  std::string what;    // "results", for "cannot write results to PATH"
  std::ofstream file;

  bool wanted() const { return !path.empty(); }
  std::ostream& stream() { return path == "-" ? std::cout : file; }
};

/// Opens every wanted output (truncating it). Throws input_error, naming the option
/// and the path, when one cannot be opened, when two name the same file, or when one
/// would overwrite the graph.
void open_outputs(std::span<output* const> outputs, const std::string& graph_path) {
  using cosched::submit::input_error;
  using cosched::submit::printable;
  // The same path, two spellings of one path ("x", "./x"), or links to one file.
  auto same_file = [](const std::string& a, const std::string& b) {
    if (a == b) return true;
    if (a == "-" || b == "-") return false;
    std::error_code ec;
    if (std::filesystem::equivalent(a, b, ec)) return true;
    // absolute() first: weakly_canonical leaves a relative path of a new file relative.
    const auto canonical_a = std::filesystem::weakly_canonical(std::filesystem::absolute(a), ec);
    if (ec) return false;
    const auto canonical_b = std::filesystem::weakly_canonical(std::filesystem::absolute(b), ec);
    return !ec && canonical_a == canonical_b;
  };
  auto check_distinct = [&] {
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      if (!outputs[i]->wanted()) continue;
      if (!graph_path.empty() && outputs[i]->path != "-" && same_file(outputs[i]->path, graph_path))
        throw input_error(outputs[i]->option + " " + printable(outputs[i]->path) + ": is the graph file");
      for (std::size_t j = i + 1; j < outputs.size(); ++j) {
        if (outputs[j]->wanted() && same_file(outputs[i]->path, outputs[j]->path))
          throw input_error(outputs[i]->option + " and " + outputs[j]->option + " both write to " +
                            printable(outputs[j]->path));
      }
    }
  };
  check_distinct();
  for (output* out : outputs) {
    if (!out->wanted() || out->path == "-") continue;
    errno = 0;
    out->file.open(out->path, std::ios::out | std::ios::trunc);
    if (!out->file) {
      const int error = errno;
      throw input_error(out->option + " " + printable(out->path) + ": cannot open for writing" +
                        (error ? ": " + std::generic_category().message(error) : std::string()));
    }
  }
  check_distinct();  // again: two spellings of one new file are the same file now
}

/// Writes one output with `writer`; false (and a message) when the writing failed.
bool write_output(output& out, const std::function<void(std::ostream&)>& writer) {
  if (!out.wanted()) return true;
  std::ostream& stream = out.stream();
  writer(stream);
  stream.flush();
  if (out.path != "-") out.file.close();
  if (stream && (out.path == "-" || !out.file.fail())) return true;
  std::cerr << "cosched-submit: cannot write " << out.what << " to " << cosched::submit::printable(out.path)
            << "\n";
  return false;
}

}  // namespace

// Real-time rings hold a file descriptor each (one ring per entity in
// ring_per_entity mode): the soft limit goes up to the hard one.
void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

int main(int argc, char** argv) {
  raise_fd_limit();
  CLI::App app{"cosched-submit: run a job graph through the cosched scheduler and report what happened"};
  std::string graph_path;
  std::string backend = "sim";
  std::string device_path;
  std::string clock = "real";
  std::string results_path;
  std::string trace_path;
  std::string trace_format_text = "json";
  std::string svg_path;
  std::string generate_text;
  std::string save_graph_path;
  std::string seed_text;
  std::uint64_t seed = 1;
  bool verify = false;
  app.add_option("GRAPH", graph_path, "job graph (JSON; see README)");
  app.add_option(
         "--backend", backend,
         "sim (simulated GPU; the default), drm (the same commands executed by a host engine "
         "that signals real kernel timeline syncobjs; needs a DRM render node and Linux 6.6) or virtgpu "
         "(each job real GPU work on a virtio-gpu device with virgl, sized to its duration; real time only)")
      ->check(CLI::IsMember({"sim", "drm", "virtgpu"}));
  app.add_option(
      "--device", device_path,
      "with --backend drm or virtgpu: the render node (default: the first usable /dev/dri/renderD*)");
  app.add_flag(
      "--verify", verify,
      "with --backend virtgpu: every job also writes a region with a value of its own; after the run "
      "every region is read back and each job line says \"verified\": true, false or null");
  app.add_option("--clock", clock,
                 "real (device threads, io_uring; the default) or virtual (deterministic, no sleeping)")
      ->check(CLI::IsMember({"real", "virtual"}));
  app.add_option("--results", results_path,
                 "write one JSON object per job, then a summary object, to FILE (- for stdout)");
  app.add_option(
      "--trace", trace_path,
      "write a trace of the run (opens in Perfetto: a track per ring and per entity, resets, timeouts, "
      "kills and bans, dependency arrows) to FILE (- for stdout)");
  app.add_option(
      "--trace-format", trace_format_text,
      "json (Chrome trace-event JSON; the default) or proto (Perfetto's protobuf trace, about half "
      "the size, for large runs)");
  app.add_option("--svg", svg_path,
                 "write a timeline picture (self-contained SVG, a lane per ring and per entity) to FILE "
                 "(- for stdout)");
  app.add_option("--generate", generate_text,
                 "run a random graph instead of GRAPH: jobs=N,entities=E,deps=D,faults=P"
                 "[,duration=MIN-MAX][,credits=C]");
  // Read as text: CLI11 turned -1, 2^64 and 1e23 into 2^64-1 without a word.
  CLI::Option* seed_option =
      app.add_option("--seed", seed_text, "seed for --generate: an integer from 0 to 2^64-1 (default 1)");
  app.add_option("--save-graph", save_graph_path, "with --generate: also write the graph to FILE");
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "the library's log level: trace, debug, info, warn (the default), error, critical or off; "
                 "without it, the environment variable COSCHED_LOG_LEVEL's");
  app.set_version_flag("--version", std::string("cosched-submit ") + cosched::version);
  try {
    app.parse(argc, argv);
    // The option first, else the environment, which the library reads itself;
    // the tool refuses a bad value of either instead of keeping warn.
    // Before any thread starts, and nothing changes the environment.
    const char* env_level = std::getenv("COSCHED_LOG_LEVEL");  // NOLINT(concurrency-mt-unsafe)
    if (!log_level.empty()) {
      if (!cosched::set_log_level(log_level))
        throw CLI::ValidationError("--log-level " + cosched::submit::printable(log_level) +
                                   ": must be one of " + std::string(cosched::log_level_names));
    } else if (env_level && *env_level && !cosched::is_log_level(env_level)) {
      throw CLI::ValidationError("COSCHED_LOG_LEVEL=" + cosched::submit::printable(env_level) +
                                 ": must be one of " + std::string(cosched::log_level_names));
    }
    if (graph_path.empty() == generate_text.empty())
      throw CLI::ValidationError("give either a GRAPH file or --generate SPEC (not both)");
    if (!save_graph_path.empty() && generate_text.empty())
      throw CLI::ValidationError("--save-graph needs --generate");
    if (seed_option->count() > 0) {
      if (generate_text.empty()) throw CLI::ValidationError("--seed needs --generate");
      const auto [end, ec] = std::from_chars(seed_text.data(), seed_text.data() + seed_text.size(), seed);
      if (ec != std::errc() || end != seed_text.data() + seed_text.size())
        throw CLI::ValidationError("--seed " + cosched::submit::printable(seed_text) +
                                   ": must be an integer from 0 to 18446744073709551615");
    }
    if (!device_path.empty() && backend == "sim")
      throw CLI::ValidationError("--device needs --backend drm or --backend virtgpu");
    if (verify && backend != "virtgpu") throw CLI::ValidationError("--verify needs --backend virtgpu");
    if (!cosched::submit::trace_format_named(trace_format_text))
      throw CLI::ValidationError("--trace-format " + cosched::submit::printable(trace_format_text) +
                                 ": must be json or proto");
    if (backend == "virtgpu" && clock == "virtual")
      throw CLI::ValidationError("--backend virtgpu runs real GPU work: it has no --clock virtual");
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::Error& e) {
    std::cerr << "cosched-submit: " << cosched::submit::printable(e.what())
              << "\nrun with --help for usage\n";
    return exit_unusable;
  }

  try {
    using namespace cosched::submit;
    const std::string source = generate_text.empty() ? graph_path : "--generate " + generate_text;
    graph g = generate_text.empty() ? load_graph(graph_path)
                                    : generate_graph(parse_generate_spec(generate_text), seed);
    if (!generate_text.empty()) check_run_length(g, source);  // a file's graph is checked as it is read
    // Devices before anything runs or is written.
    cosched::drm::device device;
    if (backend == "drm") device = open_drm_device(device_path);
    cosched::virtgpu::device gpu;
    if (backend == "virtgpu") gpu = open_virtgpu_device(device_path);
    // Outputs too: a path that cannot be written is found before the run.
    output saved{"--save-graph", save_graph_path, "the graph", {}};
    output results{"--results", results_path, "results", {}};
    output trace{"--trace", trace_path, "the trace", {}};
    output svg{"--svg", svg_path, "the picture", {}};
    const std::array<output*, 4> outputs = {&saved, &results, &trace, &svg};
    open_outputs(outputs, graph_path);
    if (!write_output(saved, [&](std::ostream& out) { write_graph(out, g); })) return exit_internal;

    run_options options;
    options.clock = clock == "virtual" ? clock_kind::virtual_time : clock_kind::real_time;
    options.backend = backend == "drm"       ? backend_kind::drm
                      : backend == "virtgpu" ? backend_kind::virtgpu
                                             : backend_kind::sim;
    options.device = device;
    options.gpu = gpu;
    options.verify = verify;
    options.stop_on_signals = true;  // real time: SIGINT/SIGTERM end the run, results are still written
    // On a terminal only, in either clock (a virtual-time run of many jobs takes
    // seconds too); one line, rewritten in place and erased at the end.
    bool progress_shown = false;
    if (::isatty(STDERR_FILENO)) {
      options.progress = [total = g.jobs.size(), &progress_shown](const run_progress& now) {
        progress_shown = true;
        std::fprintf(stderr, "\rcosched-submit: %zu/%zu jobs finished, %zu failed", now.finished, total,
                     now.failed);
        if (now.pushed < total) std::fprintf(stderr, " (%zu pushed)", now.pushed);
        std::fprintf(stderr, "\033[K");  // the rest of a longer previous line
        std::fflush(stderr);
      };
    }
    const run_outcome outcome = run_graph(g, options);
    if (progress_shown) std::fprintf(stderr, "\r\033[K");

    // Written whether the run completed or was interrupted (SIGINT, SIGTERM).
    if (!write_output(results, [&](std::ostream& out) { write_results(out, g, outcome, backend, clock); }) ||
        !write_output(trace,
                      [&](std::ostream& out) {
                        if (trace_format_named(trace_format_text) == trace_format::proto)
                          write_trace_proto(out, g, outcome);
                        else
                          write_trace(out, g, outcome);
                      }) ||
        !write_output(svg, [&](std::ostream& out) { write_svg(out, g, outcome); }))
      return exit_internal;
    if (results_path != "-" && trace_path != "-" && svg_path != "-") {
      if (g.jobs.size() <= table_limit)
        write_table(std::cout, g, outcome);
      else
        write_summary(std::cout, g, outcome);
    }
    std::cout.flush();
    if (outcome.interrupted_by != 0) {
      std::cerr << "cosched-submit: interrupted by "
                << (outcome.interrupted_by == SIGINT ? "SIGINT" : "SIGTERM") << " at " << outcome.end_us
                << " us: jobs not finished failed `shutdown`" << (results.wanted() ? "; results written" : "")
                << "\n";
      return 128 + outcome.interrupted_by;  // the shell's status for a process ended by that signal
    }
    return exit_completed;
  } catch (const cosched::submit::input_error& e) {
    std::cerr << "cosched-submit: " << e.what() << "\n";
    return exit_unusable;
  } catch (const cosched::submit::backend_unavailable& e) {
    std::cerr << "cosched-submit: " << cosched::submit::printable(e.what())
              << "\n";  // names --device as given
    return exit_unusable;
  } catch (const std::system_error& e) {
    // A graph too large for this process's resources (the message names the limit).
    const bool exhausted =
        e.code() == std::errc::too_many_files_open || e.code() == std::errc::too_many_files_open_in_system;
    std::cerr << "cosched-submit: " << (exhausted ? "" : "internal error: ") << e.what() << "\n";
    return exhausted ? exit_unusable : exit_internal;
  } catch (const std::exception& e) {
    std::cerr << "cosched-submit: internal error: " << cosched::submit::printable(e.what()) << "\n";
    return exit_internal;
  }
}

// cosched-submit: runs a job graph (JSON) through the scheduler on a simulated
// GPU and reports each job's outcome. Exit 0: run completed; 2: unusable input; 1: internal failure.
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "submit/graph.hpp"
#include "submit/runner.hpp"

namespace {

constexpr int exit_completed = 0;
constexpr int exit_internal = 1;
constexpr int exit_unusable = 2;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cosched-submit: run a job graph through the cosched scheduler and report what happened"};
  std::string graph_path;
  std::string backend = "sim";
  std::string clock = "virtual";
  std::string results_path;
  app.add_option("GRAPH", graph_path, "job graph (JSON; see README)")->required();
  app.add_option("--backend", backend, "sim (simulated GPU)")->check(CLI::IsMember({"sim"}));
  app.add_option("--clock", clock, "virtual (deterministic, no sleeping)")->check(CLI::IsMember({"virtual"}));
  app.add_option("--results", results_path,
                 "write one JSON object per job, then a summary object, to FILE (- for stdout)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "cosched-submit: " << e.what() << "\n" << "run with --help for usage\n";
    return exit_unusable;
  }

  try {
    auto g = cosched::submit::load_graph(graph_path);
    cosched::submit::check_supported(g, graph_path);
    auto outcome = cosched::submit::run_virtual(g);
    if (results_path == "-") {
      cosched::submit::write_results(std::cout, g, outcome, backend, clock);
    } else {
      if (!results_path.empty()) {
        std::ofstream out(results_path);
        if (out) cosched::submit::write_results(out, g, outcome, backend, clock);
        if (!out || !out.flush()) {
          std::cerr << "cosched-submit: cannot write results to " << results_path << "\n";
          return exit_internal;
        }
      }
      cosched::submit::write_table(std::cout, g, outcome);
    }
    return exit_completed;
  } catch (const cosched::submit::input_error& e) {
    std::cerr << "cosched-submit: " << e.what() << "\n";
    return exit_unusable;
  } catch (const std::exception& e) {
    std::cerr << "cosched-submit: internal error: " << e.what() << "\n";
    return exit_internal;
  }
}

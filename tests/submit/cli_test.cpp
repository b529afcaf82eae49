// cosched-submit as a process: exit status 0/1/2, where output goes, and that
// unusable input produces one message naming the file, the field and the job.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "cosched/version.hpp"
#include "trace_check.hpp"

namespace {

const std::filesystem::path source_dir = COSCHED_SOURCE_DIR;

struct tool_run {
  int exit_status = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs the tool with `args` (and the environment variables `env` set),
// capturing stdout and stderr through files.
tool_run run_tool(const std::vector<std::string>& args,
                  const std::vector<std::pair<std::string, std::string>>& env = {}) {
  const auto dir = std::filesystem::temp_directory_path() / ("cosched-cli-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto out_path = dir / "out", err_path = dir / "err";
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> argv;
    std::string tool = COSCHED_SUBMIT_PATH;
    argv.push_back(tool.data());
    std::vector<std::string> copies(args);
    for (auto& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(tool.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  tool_run result;
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  std::filesystem::remove_all(dir);
  return result;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path.string();
}

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("a completed run exits 0 and prints the per-job table", "[submit][cli]") {
  auto run =
      run_tool({"--clock", "virtual", (source_dir / "examples/graphs/error-propagation.json").string()});
  CHECK(run.exit_status == 0);
  CHECK(run.err.empty());
  CHECK(run.out.find("texture  upload   EIO") != std::string::npos);
  CHECK(run.out.find(
            "6 jobs: 3 succeeded, 3 failed (1 by itself, 2 by cascade); last fence signalled at 1100 us\n"
            "1 job has a fault of its own\n") != std::string::npos);
}

TEST_CASE("option results: - writes JSON lines only and FILE writes the file", "[submit][cli]") {
  const auto graph = (source_dir / "examples/graphs/kill.json").string();
  auto to_stdout = run_tool({"--clock", "virtual", "--results", "-", graph});
  CHECK(to_stdout.exit_status == 0);
  CHECK(count_lines(to_stdout.out) == 7);
  CHECK(to_stdout.out.rfind("{\"job\": \"m1\"", 0) == 0);
  CHECK(slurp(source_dir / "tests/sim/expected/kill.jsonl") ==
        to_stdout.out.substr(0, to_stdout.out.rfind("{\"summary\"")));

  const auto file = std::filesystem::temp_directory_path() / "cosched-cli-results.jsonl";
  auto to_file = run_tool({"--clock", "virtual", "--results", file.string(), graph});
  CHECK(to_file.exit_status == 0);
  CHECK(slurp(file) == to_stdout.out);
  CHECK(to_file.out.find("g2") != std::string::npos);  // the table still goes to stdout
  std::filesystem::remove(file);
}

TEST_CASE("unusable input exits 2 with one message naming file, field and job", "[submit][cli]") {
  const auto path = write_temp("cosched-cli-bad.json", R"({
    "entities": [ {"name": "e"} ],
    "jobs": [ {"id": "a", "entity": "e"}, {"id": "b", "entity": "e", "deps": ["nope"]} ] })");
  auto run = run_tool({"--results", "-", path});
  CHECK(run.exit_status == 2);
  CHECK(run.out.empty());  // nothing ran
  CHECK(count_lines(run.err) == 1);
  CHECK(run.err.find("cosched-cli-bad.json") != std::string::npos);
  CHECK(run.err.find("\"b\"") != std::string::npos);
  CHECK(run.err.find("deps") != std::string::npos);
  CHECK(run.err.find("nope") != std::string::npos);
}

TEST_CASE("a missing file, a bad option or an unsupported feature exits 2", "[submit][cli]") {
  auto missing = run_tool({"/nonexistent/graph.json"});
  CHECK(missing.exit_status == 2);
  CHECK(missing.err.find("/nonexistent/graph.json") != std::string::npos);

  auto bad_option = run_tool({"--frobnicate", (source_dir / "examples/graphs/kill.json").string()});
  CHECK(bad_option.exit_status == 2);

  auto bad_backend = run_tool({"--backend", "tpu", (source_dir / "examples/graphs/kill.json").string()});
  CHECK(bad_backend.exit_status == 2);

  auto no_graph = run_tool({});
  CHECK(no_graph.exit_status == 2);

  const auto path = write_temp("cosched-cli-rings.json", R"({
    "scheduler": {"mode": "ring_per_entity", "rings": 2},
    "entities": [ {"name": "e"} ], "jobs": [ {"id": "a", "entity": "e"} ] })");
  auto unsupported = run_tool({path});
  CHECK(unsupported.exit_status == 2);
  CHECK(count_lines(unsupported.err) == 1);
  CHECK(unsupported.err.find(
            "cosched-cli-rings.json: scheduler: field \"rings\": 2 rings need mode \"shared_ring\"") !=
        std::string::npos);
  CHECK(unsupported.out.empty());
}

TEST_CASE("option backend drm without a usable device exits 2 with one message naming what is missing",
          "[submit][cli][drm]") {
  const auto graph = (source_dir / "examples/graphs/pipeline.json").string();
  auto missing =
      run_tool({"--backend", "drm", "--device", "/nonexistent/renderD128", "--results", "-", graph});
  CHECK(missing.exit_status == 2);
  CHECK(missing.out.empty());  // nothing ran
  CHECK(count_lines(missing.err) == 1);
  CHECK(missing.err.find("--backend drm") != std::string::npos);
  CHECK(missing.err.find("no DRM device at /nonexistent/renderD128") != std::string::npos);

  if (!std::filesystem::exists("/dev/dri")) {
    auto none = run_tool({"--backend", "drm", "--clock", "virtual", graph});
    CHECK(none.exit_status == 2);
    CHECK(count_lines(none.err) == 1);
    CHECK(none.err.find("no DRM device") != std::string::npos);
  }

  auto device_without_drm = run_tool({"--device", "/dev/dri/renderD128", graph});
  CHECK(device_without_drm.exit_status == 2);
  CHECK(device_without_drm.err.find("--device needs --backend drm or --backend virtgpu") !=
        std::string::npos);
}

TEST_CASE("option backend virtgpu without a virgl device, or with options it cannot take, exits 2 naming why",
          "[submit][cli][virtgpu]") {
  const auto graph = (source_dir / "examples/graphs/pipeline.json").string();
  auto missing =
      run_tool({"--backend", "virtgpu", "--device", "/nonexistent/renderD128", "--results", "-", graph});
  CHECK(missing.exit_status == 2);
  CHECK(missing.out.empty());  // nothing ran
  CHECK(count_lines(missing.err) == 1);
  CHECK(missing.err.find("--backend virtgpu needs a virtio-gpu render node with virgl 3D") !=
        std::string::npos);
  CHECK(missing.err.find("no DRM device at /nonexistent/renderD128") != std::string::npos);

  if (!std::filesystem::exists("/dev/dri")) {
    auto none = run_tool({"--backend", "virtgpu", "--verify", graph});
    CHECK(none.exit_status == 2);
    CHECK(count_lines(none.err) == 1);
    CHECK(none.err.find("no DRM device: no render node /dev/dri/renderD*") != std::string::npos);
  }

  auto virtual_clock = run_tool({"--backend", "virtgpu", "--clock", "virtual", graph});
  CHECK(virtual_clock.exit_status == 2);
  CHECK(virtual_clock.err.find("--backend virtgpu runs real GPU work: it has no --clock virtual") !=
        std::string::npos);

  auto verify_on_sim = run_tool({"--verify", graph});
  CHECK(verify_on_sim.exit_status == 2);
  CHECK(verify_on_sim.err.find("--verify needs --backend virtgpu") != std::string::npos);
}

TEST_CASE("option help exits 0", "[submit][cli]") {
  auto help = run_tool({"--help"});
  CHECK(help.exit_status == 0);
  CHECK(help.out.find("--results") != std::string::npos);
}

namespace {

// The fields of each result line that do not depend on timing: job, entity,
// error, cause, attempts.
std::vector<std::string> outcome_fields(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("{\"summary\"", 0) == 0) break;
    out.push_back(line.substr(0, line.find(", \"queued_us\"")));
  }
  return out;
}

}  // namespace

TEST_CASE("real time (the default) runs the same graph through the reactor", "[submit][cli][real]") {
  // Outcomes that do not depend on timing agree with virtual time.
  const auto graph = (source_dir / "examples/graphs/error-propagation.json").string();
  auto real = run_tool({"--results", "-", graph});
  auto simulated = run_tool({"--clock", "virtual", "--results", "-", graph});
  REQUIRE(real.exit_status == 0);
  REQUIRE(simulated.exit_status == 0);
  CHECK(outcome_fields(real.out) == outcome_fields(simulated.out));
  CHECK(real.out.find("\"clock\": \"real\"") != std::string::npos);
}

TEST_CASE("real time: hangs time out, innocent work is replayed, slow work is extended",
          "[submit][cli][real]") {
  // Margins of hundreds of milliseconds around 1 ms commands: what is on the
  // ring when a timeout fires does not depend on scheduling noise, so the
  // outcomes equal virtual time's. (The DRM equivalence test runs the first
  // graph on the drm backend too.)
  const auto shared = (source_dir / "tests/data/real-time-reset-replay.json").string();
  const auto per_entity = write_temp("cosched-cli-real-close.json", R"({
    "scheduler": {"mode": "ring_per_entity", "credit_limit": 2, "timeout_us": 300000},
    "entities": [ {"name": "game"}, {"name": "browser"} ],
    "jobs": [ {"id": "g1", "entity": "game", "duration_us": 1000},
              {"id": "g2", "entity": "game", "fault": "hang"},
              {"id": "g3", "entity": "game", "duration_us": 1000},
              {"id": "b1", "entity": "browser", "duration_us": 1000},
              {"id": "b2", "entity": "browser", "duration_us": 1000},
              {"id": "g4", "entity": "game", "duration_us": 1000, "submit_at_us": 450000} ] })");
  for (const auto& graph : {shared, per_entity}) {
    INFO(graph);
    auto real = run_tool({"--results", "-", graph});
    auto simulated = run_tool({"--clock", "virtual", "--results", "-", graph});
    REQUIRE(real.exit_status == 0);
    REQUIRE(simulated.exit_status == 0);
    CHECK(outcome_fields(real.out) == outcome_fields(simulated.out));
  }
  // What virtual time says (so the comparison cannot pass on two wrong runs).
  auto simulated = run_tool({"--clock", "virtual", "--results", "-", shared});
  CHECK(outcome_fields(simulated.out) ==
        std::vector<std::string>{
            R"({"job": "g1", "entity": "game", "error": null, "cause": null, "attempts": 1)",
            R"({"job": "g2", "entity": "game", "error": "timed_out", "cause": null, "attempts": 1)",
            R"({"job": "b1", "entity": "browser", "error": null, "cause": null, "attempts": 2)",
            R"({"job": "b2", "entity": "browser", "error": null, "cause": null, "attempts": 2)",
            R"({"job": "g3", "entity": "game", "error": "cancelled", "cause": "g2", "attempts": 0)",
            R"({"job": "s1", "entity": "browser", "error": null, "cause": null, "attempts": 1)"});
}

TEST_CASE("real time: ring affinity places every job on the ring virtual time gives it",
          "[submit][cli][real]") {
  // `copy` may use ring 1 only until 100 ms, then ring 0 only; margins of 100 ms
  // around every event keep the placements independent of scheduling noise.
  const auto graph = write_temp("cosched-cli-real-affinity.json", R"({
    "scheduler": {"credit_limit": 2, "rings": 2},
    "entities": [ {"name": "copy", "rings": [1]}, {"name": "gfx"} ],
    "jobs": [ {"id": "c1", "entity": "copy", "duration_us": 400000},
              {"id": "g1", "entity": "gfx", "duration_us": 100000},
              {"id": "c2", "entity": "copy", "duration_us": 100000, "submit_at_us": 200000},
              {"id": "g2", "entity": "gfx", "duration_us": 400000, "submit_at_us": 600000},
              {"id": "c3", "entity": "copy", "duration_us": 100000, "submit_at_us": 700000} ],
    "actions": [ {"at_us": 100000, "set_rings": "copy", "rings": [0]} ] })");
  const auto rings_of = [](const std::string& text) {
    std::vector<std::string> rings;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("{\"summary\"", 0) == 0) break;
      rings.push_back(line.substr(line.find("\"ring\": ")));
    }
    return rings;
  };
  auto real = run_tool({"--results", "-", graph});
  auto simulated = run_tool({"--clock", "virtual", "--results", "-", graph});
  REQUIRE(real.exit_status == 0);
  REQUIRE(simulated.exit_status == 0);
  CHECK(outcome_fields(real.out) == outcome_fields(simulated.out));
  CHECK(rings_of(real.out) == rings_of(simulated.out));
  // c2 follows c1 on ring 1 although `copy` may no longer use it; c3, placed
  // once nothing of `copy` is in flight, goes to ring 0 beside g2 although ring
  // 1 is idle.
  CHECK(rings_of(simulated.out) == std::vector<std::string>{R"("ring": 1})", R"("ring": 0})", R"("ring": 1})",
                                                            R"("ring": 0})", R"("ring": 0})"});
  CHECK(simulated.out.find(
            R"({"job": "c3", "entity": "copy", "error": null, "cause": null, "attempts": 1, )"
            R"("queued_us": 700000, "scheduled_us": 700000, "finished_us": 1100000, "ring": 0})") !=
        std::string::npos);
}

TEST_CASE("an unusable ring set exits 2 with one message naming file, field and entity",
          "[submit][cli][errors]") {
  const auto path = write_temp("cosched-cli-bad-rings.json", R"({
    "scheduler": {"rings": 2},
    "entities": [ {"name": "copy"} ],
    "jobs": [ {"id": "a", "entity": "copy"} ],
    "actions": [ {"at_us": 10, "set_rings": "copy", "rings": [0, 2]} ] })");
  auto run = run_tool({"--results", "-", path});
  CHECK(run.exit_status == 2);
  CHECK(run.out.empty());  // nothing ran
  CHECK(run.err ==
        "cosched-submit: " + path +
            R"(: actions[0] (set_rings "copy"): field "rings[1]": must be a ring index from 0 to 1 )"
            R"((scheduler.rings is 2), got 2)"
            "\n");
}

TEST_CASE("option generate runs a random graph and the same seed gives the same graph",
          "[submit][cli][generate]") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto first = (dir / "cosched-gen-1.json").string(), second = (dir / "cosched-gen-2.json").string();
  auto a = run_tool({"--clock", "virtual", "--generate", "jobs=300,entities=5,deps=3,faults=0.05", "--seed",
                     "7", "--save-graph", first, "--results", "-"});
  auto b = run_tool({"--clock", "virtual", "--generate", "jobs=300,entities=5,deps=3,faults=0.05", "--seed",
                     "7", "--save-graph", second, "--results", "-"});
  REQUIRE(a.exit_status == 0);
  CHECK(count_lines(a.out) == 301);
  CHECK(slurp(first) == slurp(second));
  CHECK(a.out == b.out);
  // Replaying the saved graph gives the same results.
  auto replay = run_tool({"--clock", "virtual", "--results", "-", first});
  CHECK(replay.out == a.out);
  auto other_seed = run_tool({"--clock", "virtual", "--generate", "jobs=300,entities=5,deps=3,faults=0.05",
                              "--seed", "8", "--results", "-"});
  CHECK(other_seed.out != a.out);
  auto bad = run_tool({"--generate", "jobs=0"});
  CHECK(bad.exit_status == 2);
  CHECK(bad.err.find("jobs=0") != std::string::npos);
  auto both = run_tool({"--generate", "jobs=5", first});
  CHECK(both.exit_status == 2);
  std::filesystem::remove(first);
  std::filesystem::remove(second);
}

TEST_CASE("option trace writes Chrome trace JSON with a track per entity and per ring",
          "[submit][cli][trace]") {
  const auto trace = (std::filesystem::temp_directory_path() / "cosched-trace.json").string();
  auto run =
      run_tool({"--clock", "virtual", "--trace", trace, (source_dir / "examples/graphs/kill.json").string()});
  REQUIRE(run.exit_status == 0);
  const auto text = slurp(trace);
  CHECK(text.rfind("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[", 0) == 0);
  CHECK(cosched::submit::testing::check_chrome_trace(nlohmann::json::parse(text)).empty());
  CHECK(text.find(R"({"ph":"M","pid":1,"tid":1,"name":"thread_name","args":{"name":"ring 0"}})") !=
        std::string::npos);
  CHECK(text.find(R"x({"ph":"M","pid":1,"tid":3,"name":"thread_name","args":{"name":"miner (low)"}})x") !=
        std::string::npos);
  // m3 never ran: only its queued-to-finished span on its entity, with its outcome.
  CHECK(
      text.find(R"({"ph":"b","pid":1,"tid":3,"cat":"job","id":2,"name":"m3","ts":0,"args":{"error":"killed",)"
                R"("cause":null,"attempts":0,"scheduled_us":null}})") != std::string::npos);
  CHECK(text.find(R"({"ph":"e","pid":1,"tid":3,"cat":"job","id":2,"name":"m3","ts":6000})") !=
        std::string::npos);
  // m2 ran on the ring from 3000 to 6000.
  CHECK(text.find(R"({"ph":"X","pid":1,"tid":1,"cat":"run","name":"m2","ts":3000,"dur":3000,)") !=
        std::string::npos);
  CHECK(text.find(R"({"ph":"i","s":"t","pid":1,"tid":3,"cat":"scheduler","name":"kill","ts":4000})") !=
        std::string::npos);
  std::filesystem::remove(trace);
}

TEST_CASE("option trace-format proto writes a protobuf trace and a bad format exits 2",
          "[submit][cli][trace]") {
  const auto trace = (std::filesystem::temp_directory_path() / "cosched-trace.pftrace").string();
  const auto graph = (source_dir / "examples/graphs/hang-recovery.json").string();
  auto run = run_tool({"--clock", "virtual", "--trace-format", "proto", "--trace", trace, graph});
  REQUIRE(run.exit_status == 0);
  const auto bytes = slurp(trace);
  CHECK(cosched::submit::testing::check_proto_trace(bytes).empty());
  const auto decoded = cosched::submit::testing::decode_proto_trace(bytes);
  CHECK(decoded.tracks.front().name == "cosched scheduler (shared_ring, credit limit 3)");
  CHECK(decoded.events.size() == 2 * (5 + 6) + 4);  // 5 ring slices, 6 job spans, 4 instants
  std::filesystem::remove(trace);
  auto bad = run_tool({"--clock", "virtual", "--trace-format", "xml", "--trace", trace, graph});
  CHECK(bad.exit_status == 2);
  CHECK(bad.err.find("--trace-format xml: must be json or proto") != std::string::npos);
  CHECK(!std::filesystem::exists(trace));
}

TEST_CASE("a graph nested 200000 levels deep exits 2 with its position, not a signal",
          "[submit][cli][errors]") {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  const auto path = write_temp("cosched-cli-deep.json", "{\"entities\": " + deep + ", \"jobs\": []}");
  auto run = run_tool({"--clock", "virtual", "--results", "-", path});
  CHECK(run.exit_status == 2);
  CHECK(run.out.empty());
  CHECK(count_lines(run.err) == 1);
  CHECK(run.err.find(
            "cosched-cli-deep.json: line 1, column 77: arrays and objects nested deeper than 64 levels") !=
        std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("times that add up past 2^64 us exit 2 naming the job, not an abort", "[submit][cli][errors]") {
  // 18447 jobs of 1e15 us, each value in range: the virtual clock wrapped and the
  // timeout's event was "in the past" (abort).
  std::string text =
      R"({"scheduler": {"timeout_us": 1000000000000000}, "entities": [{"name": "e"}], "jobs": [)";
  for (int i = 0; i < 18447; ++i)
    text += std::string(i ? ", " : "") + R"({"id": "j)" + std::to_string(i) +
            R"(", "entity": "e", "duration_us": 1000000000000000})";
  const auto path = write_temp("cosched-cli-long.json", text + "]}");
  auto run = run_tool({"--clock", "virtual", "--results", "-", path});
  CHECK(run.exit_status == 2);
  CHECK(run.out.empty());
  CHECK(count_lines(run.err) == 1);
  CHECK(run.err.find(
            R"(cosched-cli-long.json: jobs[3] (id "j3"): field "duration_us": the run could last until )"
            "5000000000000000 us, past the limit of 4000000000000000 us") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("an input without end or past 256 MiB exits 2 at once, not out of memory",
          "[submit][cli][errors]") {
  // /dev/zero was read until std::bad_alloc; reading stops at its first NUL byte.
  auto zero = run_tool({"--clock", "virtual", "/dev/zero"});
  CHECK(zero.exit_status == 2);
  CHECK(zero.err ==
        "cosched-submit: /dev/zero: line 1, column 1: malformed JSON: a NUL byte, which JSON text "
        "cannot contain\n");

  // A file past the limit is rejected by its size, unread (this one is sparse).
  const auto big = std::filesystem::temp_directory_path() / ("cosched-cli-big-" + std::to_string(::getpid()));
  { std::ofstream(big) << " "; }
  std::filesystem::resize_file(big, (std::uintmax_t{256} << 20) + 1);
  auto too_big = run_tool({"--clock", "virtual", big.string()});
  CHECK(too_big.exit_status == 2);
  CHECK(too_big.err == "cosched-submit: " + big.string() +
                           ": larger than 268435456 bytes (256 MiB), the limit for a graph\n");
  std::filesystem::resize_file(big, std::uintmax_t{256} << 20);  // at the limit: read, and malformed
  auto at_limit = run_tool({"--clock", "virtual", big.string()});
  CHECK(at_limit.exit_status == 2);
  CHECK(at_limit.err.find("malformed JSON: a NUL byte") != std::string::npos);
  std::filesystem::remove(big);

  // A pipe has no size: the read stops one byte past the limit. The writer gives up
  // when the tool closes its end.
  const auto fifo =
      std::filesystem::temp_directory_path() / ("cosched-cli-fifo-" + std::to_string(::getpid()));
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const pid_t writer = ::fork();
  REQUIRE(writer >= 0);
  if (writer == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    const std::string spaces(1 << 20, ' ');
    for (int i = 0; i < 300; ++i) {
      if (::write(fd, spaces.data(), spaces.size()) < 0) break;
    }
    ::_exit(0);
  }
  auto endless = run_tool({"--clock", "virtual", fifo.string()});
  ::kill(writer, SIGKILL);
  ::waitpid(writer, nullptr, 0);
  std::filesystem::remove(fifo);
  CHECK(endless.exit_status == 2);
  CHECK(endless.err == "cosched-submit: " + fifo.string() +
                           ": larger than 268435456 bytes (256 MiB), the limit for a graph\n");
}

TEST_CASE("a long job id is cut in the terminal table and kept whole in the results", "[submit][cli]") {
  // A 1 MB id padded every row of the table to 1 MB (1 GB of output for 1000 jobs).
  const std::string long_id(1 << 20, 'x');
  std::string text = R"({"entities": [{"name": "e"}], "jobs": [{"id": ")" + long_id + R"(", "entity": "e"})";
  for (int i = 0; i < 999; ++i) text += R"(, {"id": "j)" + std::to_string(i) + R"(", "entity": "e"})";
  const auto path = write_temp("cosched-cli-long-id.json", text + "]}");
  auto table = run_tool({"--clock", "virtual", path});
  REQUIRE(table.exit_status == 0);
  CHECK(table.out.size() < 200'000);
  CHECK(table.out.find(std::string(40, 'x') + "...  e ") != std::string::npos);
  CHECK(table.out.find(std::string(41, 'x')) == std::string::npos);
  CHECK(table.out.find("\nj0 ") != std::string::npos);
  const auto results = (std::filesystem::temp_directory_path() / "cosched-cli-long-id.jsonl").string();
  auto full = run_tool({"--clock", "virtual", "--results", results, path});
  REQUIRE(full.exit_status == 0);
  CHECK(slurp(results).find("{\"job\": \"" + long_id + "\"") == 0);
  std::filesystem::remove(results);
  std::filesystem::remove(path);
}

TEST_CASE("option seed takes an integer from 0 to 2^64-1, and only with --generate",
          "[submit][cli][generate]") {
  // -1, 2^64 and 1e23 all became 2^64-1 silently.
  for (const std::string seed : {"-1", "18446744073709551616", "1e23", "+5", " 5", "0x10", ""}) {
    INFO(seed);
    auto run = run_tool({"--clock", "virtual", "--generate", "jobs=3", "--seed", seed, "--results", "-"});
    CHECK(run.exit_status == 2);
    CHECK(run.out.empty());
    CHECK(run.err.rfind(
              "cosched-submit: --seed " + seed + ": must be an integer from 0 to 18446744073709551615\n",
              0) == 0);
  }
  auto max = run_tool(
      {"--clock", "virtual", "--generate", "jobs=3", "--seed", "18446744073709551615", "--results", "-"});
  CHECK(max.exit_status == 0);
  CHECK(count_lines(max.out) == 4);
  auto without_generate =
      run_tool({"--clock", "virtual", "--seed", "3", (source_dir / "examples/graphs/kill.json").string()});
  CHECK(without_generate.exit_status == 2);
  CHECK(without_generate.err.rfind("cosched-submit: --seed needs --generate\n", 0) == 0);
  auto twice = run_tool({"--clock", "virtual", "--generate", "jobs=5,jobs=6"});
  CHECK(twice.exit_status == 2);
  CHECK(twice.err == "cosched-submit: --generate: jobs=6: \"jobs\" is given twice (first jobs=5)\n");
}

TEST_CASE("output paths are checked before the run: a bad one exits 2 and nothing runs",
          "[submit][cli][errors]") {
  // They were checked after the run: a bad path lost the whole run (exit 1, no reason).
  const auto graph = (source_dir / "examples/graphs/kill.json").string();
  for (const std::string option : {"--results", "--trace", "--svg"}) {
    INFO(option);
    auto missing_dir = run_tool({"--clock", "virtual", option, "/nonexistent/out", graph});
    CHECK(missing_dir.exit_status == 2);
    CHECK(missing_dir.out.empty());  // no table: nothing ran
    CHECK(missing_dir.err == "cosched-submit: " + option +
                                 " /nonexistent/out: cannot open for writing: No such file or directory\n");
    const auto dir = std::filesystem::temp_directory_path().string();
    auto directory = run_tool({"--clock", "virtual", option, dir, graph});
    CHECK(directory.exit_status == 2);
    CHECK(directory.out.empty());
    CHECK(directory.err ==
          "cosched-submit: " + option + " " + dir + ": cannot open for writing: Is a directory\n");
  }
  auto save = run_tool({"--clock", "virtual", "--generate", "jobs=3", "--save-graph", "/nonexistent/g.json"});
  CHECK(save.exit_status == 2);
  CHECK(save.out.empty());
  CHECK(save.err ==
        "cosched-submit: --save-graph /nonexistent/g.json: cannot open for writing: No such file or "
        "directory\n");

  // Two outputs on one file, or an output on the graph itself.
  const auto out = (std::filesystem::temp_directory_path() / "cosched-cli-same.out").string();
  const auto other_spelling =
      (std::filesystem::temp_directory_path() / "." / "cosched-cli-same.out").string();
  auto same = run_tool({"--clock", "virtual", "--results", out, "--trace", other_spelling, graph});
  CHECK(same.exit_status == 2);
  CHECK(same.err == "cosched-submit: --results and --trace both write to " + other_spelling + "\n");
  CHECK_FALSE(std::filesystem::exists(out));  // found before anything was opened
  auto both_stdout = run_tool({"--clock", "virtual", "--results", "-", "--svg", "-", graph});
  CHECK(both_stdout.exit_status == 2);
  CHECK(both_stdout.err == "cosched-submit: --results and --svg both write to -\n");
  const auto copy = write_temp("cosched-cli-overwrite.json", slurp(graph));
  auto overwrite = run_tool({"--clock", "virtual", "--svg", copy, copy});
  CHECK(overwrite.exit_status == 2);
  CHECK(overwrite.err == "cosched-submit: --svg " + copy + ": is the graph file\n");
  CHECK(slurp(copy) == slurp(graph));
  std::filesystem::remove(copy);
}

namespace {

/// Runs the tool with its stderr on a pseudo-terminal (so it shows its progress),
/// waits until the progress line shows `progress`, then sends `signal`; with
/// `signal` 0, lets it run to its end.
tool_run interrupt_tool(const std::vector<std::string>& args, const std::string& progress, int signal) {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  REQUIRE(master >= 0);
  REQUIRE(::grantpt(master) == 0);
  REQUIRE(::unlockpt(master) == 0);
  const std::string terminal = ::ptsname(master);
  const auto out_path =
      std::filesystem::temp_directory_path() / ("cosched-cli-int-" + std::to_string(::getpid()));
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(terminal.c_str(), O_RDWR | O_NOCTTY);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::close(master);
    std::vector<char*> argv;
    std::string tool = COSCHED_SUBMIT_PATH;
    argv.push_back(tool.data());
    std::vector<std::string> copies(args);
    for (auto& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(tool.c_str(), argv.data());
    ::_exit(127);
  }
  // Everything the tool writes to the terminal; the signal once `progress` shows.
  // The bound only keeps a broken build from hanging the suite.
  std::string terminal_text;
  bool signalled = false;
  bool closed = false;
  for (int waited_ms = 0; waited_ms < 120'000;) {
    pollfd readable{master, POLLIN, 0};
    if (::poll(&readable, 1, 100) == 0) {
      waited_ms += 100;
      continue;
    }
    char buffer[4096];
    const ssize_t count = ::read(master, buffer, sizeof buffer);
    if (count <= 0) {  // EIO: the tool has exited and closed the terminal
      closed = true;
      break;
    }
    terminal_text.append(buffer, static_cast<std::size_t>(count));
    if (signal != 0 && !signalled && terminal_text.find(progress) != std::string::npos) {
      ::kill(child, signal);
      signalled = true;
    }
  }
  if (signal == 0) signalled = closed;  // ran to its end, which closed the terminal
  if (!signalled) ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(master);
  CHECK(signalled);
  tool_run result;
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = slurp(out_path);
  result.err = terminal_text;
  std::filesystem::remove(out_path);
  return result;
}

}  // namespace

TEST_CASE("an interrupted real-time run still writes every job's outcome and the summary",
          "[submit][cli][real]") {
  // a and b finish within milliseconds; d runs for an hour on its own ring; c is
  // pushed after an hour. The signal comes once the progress shows a and b finished.
  const auto graph = write_temp("cosched-cli-interrupted.json", R"({
    "scheduler": {"mode": "ring_per_entity"},
    "entities": [ {"name": "e"}, {"name": "f"}, {"name": "g"} ],
    "jobs": [ {"id": "a", "entity": "e", "duration_us": 1000},
              {"id": "b", "entity": "e", "duration_us": 1000, "deps": ["a"]},
              {"id": "d", "entity": "f", "duration_us": 3600000000},
              {"id": "c", "entity": "g", "submit_at_us": 3600000000} ],
    "actions": [ {"at_us": 7200000000, "kill": "g"} ] })");
  const auto results = (std::filesystem::temp_directory_path() / "cosched-cli-interrupted.jsonl").string();
  for (const int signal : {SIGINT, SIGTERM}) {
    const std::string name = signal == SIGINT ? "SIGINT" : "SIGTERM";
    INFO(name);
    auto run = interrupt_tool({"--results", results, "--trace", results + ".trace", graph},
                              "2/4 jobs finished, 0 failed", signal);
    CHECK(run.exit_status == 128 + signal);
    CHECK(run.err.find("cosched-submit: interrupted by " + name + " at ") != std::string::npos);
    CHECK(run.err.find(" us: jobs not finished failed `shutdown`; results written") != std::string::npos);
    CHECK(run.out.find("(interrupted by " + name + ": the rest was shut down)") != std::string::npos);

    std::vector<nlohmann::json> lines;
    std::istringstream in(slurp(results));
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    REQUIRE(lines.size() == 5);
    const auto& summary = lines[4]["summary"];
    const auto end_us = summary["end_us"].get<std::uint64_t>();
    // a and b ran and succeeded; d was on its ring, c never pushed before the signal:
    // both fail `shutdown` when the run stops.
    const std::vector<std::tuple<std::string, nlohmann::json, int>> expected = {
        {"a", nullptr, 1}, {"b", nullptr, 1}, {"d", "shutdown", 1}, {"c", "shutdown", 0}};
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const auto& [id, error, attempts] = expected[i];
      INFO(lines[i].dump());
      CHECK(lines[i]["job"] == id);
      CHECK(lines[i]["error"] == error);
      CHECK(lines[i]["cause"] == nullptr);
      CHECK(lines[i]["attempts"] == attempts);
      CHECK(lines[i]["scheduled_us"].is_null() == (attempts == 0));
      CHECK(lines[i]["finished_us"].get<std::uint64_t>() <= end_us);
    }
    // d and c failed when the run stopped: after b finished (which the signal waited for);
    // c was pushed only then.
    const auto b_finished = lines[1]["finished_us"].get<std::uint64_t>();
    CHECK(lines[2]["finished_us"].get<std::uint64_t>() >= b_finished);
    CHECK(lines[3]["queued_us"].get<std::uint64_t>() >= b_finished);
    CHECK(std::max(lines[2]["finished_us"].get<std::uint64_t>(),
                   lines[3]["finished_us"].get<std::uint64_t>()) == end_us);
    CHECK(summary["jobs"] == 4);
    CHECK(summary["succeeded"] == 2);
    CHECK(summary["failed"] == 2);
    CHECK(summary["errors"] == nlohmann::json{{"shutdown", 2}});
    CHECK(summary["nothing_left_to_do"] == false);
    CHECK(summary["interrupted"] == name);
    CHECK(summary["clock"] == "real");
    // d occupied its ring from when the device began it (after it was run)
    // until the run stopped: its ring slice in the trace, and its ring time.
    const auto trace_text = slurp(results + ".trace");
    REQUIRE(nlohmann::json::accept(trace_text));
    const auto trace = nlohmann::json::parse(trace_text);
    std::optional<nlohmann::json> d_slice;
    for (const auto& event : trace["traceEvents"])
      if (event["ph"] == "X" && event["pid"] == 1 && event["name"] == "d") d_slice = event;
    REQUIRE(d_slice);
    const auto d_start = (*d_slice)["ts"].get<std::uint64_t>();
    CHECK(d_start >= lines[2]["scheduled_us"].get<std::uint64_t>());
    CHECK(d_start + (*d_slice)["dur"].get<std::uint64_t>() == lines[2]["finished_us"].get<std::uint64_t>());
    CHECK(summary["entities"][1]["ring_us"] == (*d_slice)["dur"].get<std::uint64_t>());
  }
  std::filesystem::remove(results);
  std::filesystem::remove(results + ".trace");
  std::filesystem::remove(graph);
}

TEST_CASE("a long virtual-time run shows its progress on a terminal only, and erases it",
          "[submit][cli][generate]") {
  // 200000 generated jobs take seconds of wall time in any build: past the first report.
  const std::vector<std::string> args = {"--clock",     "virtual", "--generate", "jobs=200000,deps=0",
                                         "--log-level", "off"};
  const auto on_terminal = interrupt_tool(args, "", 0);
  CHECK(on_terminal.exit_status == 0);
  CHECK(on_terminal.err.rfind("\rcosched-submit: ", 0) == 0);
  CHECK(on_terminal.err.find("/200000 jobs finished, 0 failed") != std::string::npos);
  CHECK(on_terminal.err.size() >= 4);
  CHECK(on_terminal.err.substr(on_terminal.err.size() - 4) == "\r\033[K");  // erased at the end
  // stdout is the same with stderr on a terminal or not; stderr off a terminal is empty.
  const auto off_terminal = run_tool(args);
  CHECK(off_terminal.exit_status == 0);
  CHECK(off_terminal.err.empty());
  CHECK(off_terminal.out == on_terminal.out);
  CHECK(off_terminal.out.rfind("200000 jobs: 200000 succeeded, 0 failed; last fence signalled at ", 0) == 0);
}

TEST_CASE("a job whose body throws fails `exception`, and its message is logged and carried to the results",
          "[submit][cli][errors]") {
  const auto path = write_temp("cosched-cli-throw.json", R"({"entities": [{"name": "gfx"}, {"name": "bg"}],
    "jobs": [{"id": "a", "entity": "gfx", "duration_us": 100},
             {"id": "b", "entity": "gfx", "duration_us": 100, "deps": ["a"],
              "fault": "throw:texture \"7\" is 0 pixels wide"},
             {"id": "c", "entity": "bg", "duration_us": 50, "deps": ["b"]},
             {"id": "d", "entity": "gfx", "duration_us": 10}]})");
  auto run = run_tool({"--clock", "virtual", "--results", "-", path});
  REQUIRE(run.exit_status == 0);
  // b's body runs once a has signalled (at 100 us), throws, and never makes a command.
  CHECK(run.out.find(R"({"job": "b", "entity": "gfx", "error": "exception", "cause": null, "attempts": 0, )"
                     R"("queued_us": 0, "scheduled_us": null, "finished_us": 100, )"
                     R"("message": "texture \"7\" is 0 pixels wide"})"
                     "\n") != std::string::npos);
  CHECK(run.out.find(R"({"job": "c", "entity": "bg", "error": "exception", "cause": "b", "attempts": 0, )"
                     R"("queued_us": 0, "scheduled_us": null, "finished_us": 100})"
                     "\n") != std::string::npos);
  CHECK(run.out.find(R"({"job": "d", "entity": "gfx", "error": null, "cause": null, "attempts": 1, )"
                     R"("queued_us": 0, "scheduled_us": 100, "finished_us": 110})"
                     "\n") != std::string::npos);
  // "message" only where a body threw.
  CHECK(run.out.find("\"message\"") == run.out.rfind("\"message\""));
  CHECK(run.err.find("job 2 of entity 'gfx': its body threw: texture \"7\" is 0 pixels wide; the job fails "
                     "`exception`") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("option version prints the tool's name and the library's version, and exits 0", "[submit][cli]") {
  auto run = run_tool({"--version"});
  CHECK(run.exit_status == 0);
  CHECK(run.out == std::string("cosched-submit ") + cosched::version + "\n");
  CHECK(run.err.empty());
}

TEST_CASE("option log-level and COSCHED_LOG_LEVEL set the library's level, and a bad level exits 2",
          "[submit][cli][errors]") {
  const auto path = write_temp("cosched-cli-log-level.json", R"({"entities": [{"name": "gfx"}],
    "jobs": [{"id": "a", "entity": "gfx", "duration_us": 100, "fault": "throw:no texture"}]})");
  const std::string logged = "its body threw: no texture";
  // The default, warn, shows the error the library logs.
  CHECK(run_tool({"--clock", "virtual", path}).err.find(logged) != std::string::npos);
  auto off = run_tool({"--clock", "virtual", "--log-level", "off", path});
  CHECK(off.exit_status == 0);
  CHECK(off.err.empty());
  auto env_off = run_tool({"--clock", "virtual", path}, {{"COSCHED_LOG_LEVEL", "off"}});
  CHECK(env_off.exit_status == 0);
  CHECK(env_off.err.empty());
  // The option wins over the environment.
  auto both = run_tool({"--clock", "virtual", "--log-level", "error", path}, {{"COSCHED_LOG_LEVEL", "off"}});
  CHECK(both.err.find(logged) != std::string::npos);
  auto bad = run_tool({"--clock", "virtual", "--log-level", "loud", path});
  CHECK(bad.exit_status == 2);
  CHECK(bad.out.empty());
  CHECK(bad.err.find(
            "cosched-submit: --log-level loud: must be one of trace, debug, info, warn, error, critical, "
            "off\n") == 0);
  auto bad_env = run_tool({"--clock", "virtual", path}, {{"COSCHED_LOG_LEVEL", "LOUD\x01"}});
  CHECK(bad_env.exit_status == 2);
  CHECK(bad_env.out.empty());
  CHECK(bad_env.err.find("cosched-submit: COSCHED_LOG_LEVEL=LOUD\\x01: must be one of") == 0);
  std::filesystem::remove(path);
}

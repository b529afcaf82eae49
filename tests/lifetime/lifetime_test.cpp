// Lifetime of jobs on every path (success, hardware error, own failure, kill,
// close, shutdown, scope stop, broken promise), in virtual time: nothing of a job
// is alive when its finished fence signals, and every fence signals exactly once.
#include "cosched/scheduler.hpp"

#include <cerrno>
#include <deque>
#include <latch>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>

#include "catch.hpp"
#include "cosched/cosched.hpp"
#include "cosched/testing.hpp"

using namespace cosched;
using sim::time_us;
using std::chrono::nanoseconds;

namespace {

/// A command that counts itself: its probe dies with the command.
struct counted_command {
  sim::command cmd;
  testing::probe alive;
};
using counted_job = job<counted_command>;

/// A ring of counted commands: runs the inner sim command on a virtual ring.
class counted_ring final : public ring<counted_command> {
 public:
  explicit counted_ring(sim::virtual_clock& clock) noexcept : inner(clock) {}
  fence run(counted_command& c) override { return inner.run(c.cmd); }
  void cancel_all() noexcept override {
    ++cancels;
    inner.cancel_all();
  }

  sim::virtual_ring inner;
  int cancels = 0;
};

/// What the test knows of one job. Everything is touched on the thread that
/// runs the virtual clock (or by a thread the test joins before reading).
struct job_record {
  job_record(std::string name, std::uint64_t command_tag) : label(std::move(name)), tag(command_tag) {}
  job_record(const job_record&) = delete;
  job_record& operator=(const job_record&) = delete;

  sim::command command_for(time_us duration, sim::fault effect = {}) const {
    return sim::command{duration, effect, tag};
  }

  const std::string label;
  const std::uint64_t tag;
  testing::live_counter frame;    // the probe in the job's by-value parameter
  testing::live_counter command;  // the probe inside its command (or a local command)
  submitted fences;
  bool resumed = false;  // the body ran past its last co_await

  // Taken inline, at the moment the finished fence signals.
  long frames_at_finish = -1;
  long commands_at_finish = -1;
  bool scheduled_signalled_at_finish = false;
  std::optional<time_us> finished_at;
};

// ------------------------------------------------------------------ job bodies

/// Waits for `deps` in order, then returns a counted command.
counted_job prepare(testing::probe, job_record& r, std::vector<fence> deps, sim::command cmd) {
  for (auto& dependency : deps) co_await dependency;
  r.resumed = true;
  co_return counted_command{cmd, testing::probe(r.command)};
}

/// Waits for `dependency` with try_wait (a failure does not stop it), then runs.
counted_job tolerate(testing::probe, job_record& r, fence dependency, std::error_code& seen,
                     sim::command cmd) {
  seen = co_await try_wait(dependency);
  r.resumed = true;
  co_return counted_command{cmd, testing::probe(r.command)};
}

/// Holds a command in a local across its waits, then fails itself.
counted_job fail_itself(testing::probe, job_record& r, std::vector<fence> deps, std::error_code ec) {
  counted_command local{r.command_for(1), testing::probe(r.command)};
  for (auto& dependency : deps) co_await dependency;
  r.resumed = true;
  co_return fail(ec);
}

enum class throw_kind { system_error, runtime_error };

/// Holds a command in a local across its waits, then throws.
counted_job throw_itself(testing::probe, job_record& r, std::vector<fence> deps, throw_kind kind,
                         std::error_code ec) {
  counted_command local{r.command_for(1), testing::probe(r.command)};
  for (auto& dependency : deps) co_await dependency;
  r.resumed = true;
  if (kind == throw_kind::system_error) throw std::system_error(ec);
  if (kind == throw_kind::runtime_error) throw std::runtime_error("job body failed");
  co_return counted_command{r.command_for(1), testing::probe(r.command)};
}

/// Holds the scheduler's pass that runs it until `release` opens: a way to let
/// another thread act at an exact point of a pass, without timing.
counted_job hold_pass(testing::probe, job_record& r, std::latch& entered, std::latch& release,
                      sim::command cmd) {
  entered.count_down();
  release.wait();
  r.resumed = true;
  co_return counted_command{cmd, testing::probe(r.command)};
}

// ------------------------------------------------------------------ fixture

struct job_spec {
  time_us duration = 100;
  sim::fault effect{};
  std::vector<fence> deps{};
  std::uint32_t credits = 1;
  scope* in = nullptr;
};

/// A scheduler of counted commands on a virtual clock, and the record of every
/// job pushed through it.
struct lifetime_fixture {
  explicit lifetime_fixture(std::uint32_t credits)
      : ring(clock), sched(ctx.get_executor(), ring, {.credit_limit = credits}) {}
  lifetime_fixture(const lifetime_fixture&) = delete;
  lifetime_fixture& operator=(const lifetime_fixture&) = delete;
  ~lifetime_fixture() {
    // A test that stopped early still shuts down (its own checks have failed).
    if (!sched.is_shut_down()) {
      sched.shutdown(nanoseconds(0));
      clock.run(ctx);
    }
  }

  job_record& add(const std::string& label) {
    auto& r = records.emplace_back(label, records.size() + 1);
    by_label.emplace(label, &r);
    return r;
  }
  job_record& operator[](const std::string& label) { return *by_label.at(label); }

  /// Keeps the fences of `r` and watches both; the finished watch takes the
  /// job's live counts at the moment it signals.
  const submitted& track(job_record& r, submitted s) {
    r.fences = std::move(s);
    checker.watch(r.fences.scheduled(), r.label + ".scheduled");
    checker.watch(r.fences.finished, r.label + ".finished", [this, &r] {
      r.frames_at_finish = r.frame.alive();
      r.commands_at_finish = r.command.alive();
      r.scheduled_signalled_at_finish = r.fences.scheduled().signalled();
      r.finished_at = clock.now();
    });
    return r.fences;
  }

  /// Pushes the common body (`prepare`).
  const submitted& push(entity<counted_command>& e, const std::string& label, job_spec spec) {
    auto& r = add(label);
    // Made in its own statement: the argument's temporary probe must be gone
    // before push, whose fences may signal at once.
    auto j =
        prepare(testing::probe(r.frame), r, std::move(spec.deps), r.command_for(spec.duration, spec.effect));
    return track(r, e.push(std::move(j), {.credits = spec.credits, .in = spec.in}));
  }

  /// Pushes a body made by the test for record `r` (make it in a statement of
  /// its own, so that no temporary probe of the call is alive during push).
  const submitted& push(entity<counted_command>& e, job_record& r, counted_job j, push_options options = {}) {
    return track(r, e.push(std::move(j), options));
  }

  void run() { clock.run(ctx); }

  /// Labels of the commands the ring ran, in run order.
  std::vector<std::string> run_order() const {
    std::vector<std::string> labels;
    for (const auto& run : ring.inner.log()) labels.push_back(records.at(run.tag - 1).label);
    return labels;
  }
  std::optional<time_us> run_at(const std::string& label) {
    std::optional<time_us> at;
    for (const auto& run : ring.inner.log())
      if (run.tag == (*this)[label].tag) at = run.run_at;
    return at;
  }

  long frames_alive() const {
    long n = 0;
    for (const auto& r : records) n += r.frame.alive();
    return n;
  }
  long commands_alive() const {
    long n = 0;
    for (const auto& r : records) n += r.command.alive();
    return n;
  }

  /// (a) nothing of a job was alive when its finished fence signalled (and its
  /// scheduled fence had signalled by then); (b) nothing is alive now, and every
  /// fence of every job signalled exactly once.
  void check_all_retired() const {
    CHECK(checker.watched() == 2 * records.size());
    CHECK(checker.pending_labels() == std::vector<std::string>{});
    CHECK(checker.all_exactly_once());
    CHECK(others.all_exactly_once());
    for (const auto& r : records) {
      INFO("job " << r.label);
      CHECK(r.frame.created.load() > 0);  // the probe was there to count
      CHECK(r.frames_at_finish == 0);
      CHECK(r.commands_at_finish == 0);
      CHECK(r.scheduled_signalled_at_finish);
      CHECK(r.frame.alive() == 0);
      CHECK(r.command.alive() == 0);
    }
    CHECK(frames_alive() == 0);
    CHECK(commands_alive() == 0);
  }

  asio::io_context ctx;
  sim::virtual_clock clock;
  counted_ring ring;
  scheduler<counted_command> sched;
  std::deque<job_record> records;  // stable addresses; tag = index + 1
  std::map<std::string, job_record*> by_label;
  testing::fence_checker checker;  // the jobs' fences
  testing::fence_checker others;   // shutdown and join fences
};

std::string outcome(const job_record& r) {
  if (!r.fences.finished.signalled()) return "pending";
  const auto ec = r.fences.finished.error();
  return ec ? error_name(ec) : "ok";
}
std::string scheduled_outcome(const job_record& r) {
  if (!r.fences.scheduled().signalled()) return "pending";
  const auto ec = r.fences.scheduled().error();
  return ec ? error_name(ec) : "ok";
}

const std::error_code eio(EIO, std::generic_category());

}  // namespace

// ------------------------------------------------------------------ success

TEST_CASE("normal completion: priorities, credits and cross-entity dependencies", "[lifetime][scheduler]") {
  lifetime_fixture f(4);
  auto kernel = f.sched.make_entity({.prio = priority::kernel, .name = "k"});
  auto high = f.sched.make_entity({.prio = priority::high, .name = "h"});
  auto normal = f.sched.make_entity({.prio = priority::normal, .name = "n"});
  auto low = f.sched.make_entity({.prio = priority::low, .name = "l"});

  f.push(high, "h1", {.duration = 100, .credits = 2});
  auto& n1 = f.push(normal, "n1", {.duration = 100});
  auto& k1 = f.push(kernel, "k1", {.duration = 50});
  auto& l1 = f.push(low, "l1", {.duration = 100, .deps = {n1.finished}});
  f.push(high, "h2", {.duration = 100, .deps = {k1.finished}, .credits = 3});
  f.push(normal, "n2", {.duration = 100});
  f.push(kernel, "k2", {.duration = 100, .deps = {l1.finished}, .credits = 4});

  // At 100: h1 executes, n1 is on the ring behind it, h2 is prepared and waits
  // for credits, l1 and k2 wait for dependencies, k1 has retired.
  std::map<std::string, std::pair<long, long>> at_100;
  f.clock.at(100, sim::phase::other, [&] {
    for (const auto& r : f.records) at_100[r.label] = {r.frame.alive(), r.command.alive()};
  });
  f.run();

  CHECK(at_100["k1"] == std::pair(0L, 0L));
  CHECK(at_100["h1"] == std::pair(1L, 1L));
  CHECK(at_100["n1"] == std::pair(1L, 1L));
  CHECK(at_100["h2"] == std::pair(1L, 1L));
  CHECK(at_100["n2"] == std::pair(1L, 1L));
  CHECK(at_100["l1"] == std::pair(1L, 0L));
  CHECK(at_100["k2"] == std::pair(1L, 0L));

  // t=0: k1, h1, n1 (4 credits). 50: h2 (3 credits) is the best head and does
  // not fit; n2 is not run past it. 150: h2. 250: n2. 350: l1. 550: k2 (4 credits).
  CHECK(f.run_order() == std::vector<std::string>{"k1", "h1", "n1", "h2", "n2", "l1", "k2"});
  CHECK(f.run_at("h2") == 150);
  CHECK(f.run_at("n2") == 250);
  CHECK(f.run_at("l1") == 350);
  CHECK(f.run_at("k2") == 550);
  const std::map<std::string, time_us> finished{{"k1", 50},  {"h1", 150}, {"n1", 250}, {"h2", 350},
                                                {"n2", 450}, {"l1", 550}, {"k2", 650}};
  for (const auto& [label, at] : finished) {
    INFO("job " << label);
    CHECK(outcome(f[label]) == "ok");
    CHECK(f[label].finished_at == at);
    CHECK(f[label].resumed);
    CHECK(f[label].command.created.load() > 0);
  }
  f.check_all_retired();
  CHECK(f.ring.inner.in_flight() == 0);
}

// ------------------------------------------------------------------ hardware error

TEST_CASE("a hardware error fails the job and its dependents, which are not resumed",
          "[lifetime][dependency]") {
  lifetime_fixture f(2);
  auto a = f.sched.make_entity({.name = "a"});
  auto b = f.sched.make_entity({.name = "b"});
  auto c = f.sched.make_entity({.name = "c"});
  auto& a1 = f.push(a, "a1", {.duration = 100, .effect = testing::fault::error(EIO)});
  f.push(a, "a2", {.duration = 100});
  auto& b1 = f.push(b, "b1", {.duration = 10, .deps = {a1.finished}});
  f.push(c, "c1", {.duration = 10, .deps = {b1.finished}});  // a chain: root a1
  std::error_code seen_by_c2;
  auto& c2 = f.add("c2");
  auto c2_job = tolerate(testing::probe(c2.frame), c2, a1.finished, seen_by_c2, c2.command_for(50));
  f.push(c, c2, std::move(c2_job));
  f.run();

  CHECK(outcome(f["a1"]) == "EIO");
  CHECK(scheduled_outcome(f["a1"]) == "ok");  // it was run
  CHECK_FALSE(f["a1"].fences.finished.cause().has_value());
  CHECK(f["a1"].finished_at == 100);
  for (const char* label : {"b1", "c1"}) {
    INFO("job " << label);
    CHECK(outcome(f[label]) == "EIO");
    CHECK(scheduled_outcome(f[label]) == "EIO");
    CHECK(f[label].fences.finished.cause() == a1.finished.point());
    CHECK_FALSE(f[label].resumed);  // never resumed after the failed co_await
    CHECK(f[label].command.created.load() == 0);
    CHECK(f[label].finished_at == 100);
  }
  CHECK(outcome(f["a2"]) == "ok");
  CHECK(f["a2"].finished_at == 200);
  CHECK(seen_by_c2 == eio);
  CHECK(outcome(c2) == "ok");
  CHECK(c2.finished_at == 250);
  CHECK(f.run_order() == std::vector<std::string>{"a1", "a2", "c2"});
  f.check_all_retired();
}

// ------------------------------------------------------------------ the body fails

TEST_CASE("a job body that fails itself or throws: frame and locals die before its fences signal",
          "[lifetime][job]") {
  lifetime_fixture f(1);
  auto e = f.sched.make_entity({.name = "e"});
  auto other = f.sched.make_entity({.name = "f"});
  promise later;
  f.push(e, "e1", {.duration = 100});
  auto& e2 = f.add("e2");
  auto e2_job =
      fail_itself(testing::probe(e2.frame), e2, {}, std::make_error_code(std::errc::invalid_argument));
  f.push(e, e2, std::move(e2_job));
  auto& e3 = f.add("e3");
  auto e3_job = throw_itself(testing::probe(e3.frame), e3, {later.get_fence()}, throw_kind::system_error,
                             std::make_error_code(std::errc::device_or_resource_busy));
  f.push(e, e3, std::move(e3_job));
  auto& e4 = f.add("e4");
  auto e4_job = throw_itself(testing::probe(e4.frame), e4, {}, throw_kind::runtime_error, {});
  f.push(e, e4, std::move(e4_job));
  f.push(e, "e5", {.duration = 100});
  f.push(other, "f1", {.duration = 10, .deps = {e2.fences.finished}});
  f.clock.at(50, sim::phase::other, [&] { later.set_value(); });
  f.run();

  CHECK(outcome(e2) == "EINVAL");
  CHECK(outcome(e3) == "EBUSY");
  CHECK(outcome(e4) == "exception");
  for (auto* r : {&e2, &e3, &e4}) {
    INFO("job " << r->label);
    CHECK(r->resumed);
    CHECK(r->command.created.load() > 0);  // the local command existed and died
    CHECK_FALSE(r->fences.finished.cause().has_value());
    CHECK(scheduled_outcome(*r) == outcome(*r));
    CHECK(r->finished_at == 100);  // after e1, their predecessor
  }
  CHECK(outcome(f["f1"]) == "EINVAL");
  CHECK(f["f1"].fences.finished.cause() == e2.fences.finished.point());
  CHECK_FALSE(f["f1"].resumed);
  CHECK(f["f1"].finished_at == 100);
  CHECK(outcome(f["e1"]) == "ok");
  CHECK(outcome(f["e5"]) == "ok");
  CHECK(f["e5"].finished_at == 200);
  CHECK(f.run_order() == std::vector<std::string>{"e1", "e5"});
  f.check_all_retired();
}

// ------------------------------------------------------------------ kill

TEST_CASE("kill: commands on the ring finish, queued and waiting jobs fail killed, later pushes too",
          "[lifetime][kill]") {
  lifetime_fixture f(3);
  auto victim = f.sched.make_entity({.name = "v"});
  auto witness = f.sched.make_entity({.name = "w"});
  promise never;  // kept alive by the test until after the kill
  f.push(victim, "v1", {.duration = 1000});
  f.push(victim, "v2", {.duration = 1000});
  auto& v3 = f.push(victim, "v3", {.duration = 100, .credits = 2});  // behind credits
  auto& w1 = f.push(witness, "w1", {.duration = 100});               // queued behind v3
  f.push(victim, "v4", {.duration = 100, .deps = {never.get_fence()}});
  f.push(victim, "v5", {.duration = 100, .deps = {w1.finished}});  // another entity's queued job
  f.push(witness, "w2", {.duration = 100, .deps = {v3.finished}});

  f.clock.at(500, sim::phase::kill, [&] { victim.kill(); });
  f.clock.at(500, sim::phase::push, [&] { f.push(victim, "late1", {.duration = 10}); });
  f.clock.at(1500, sim::phase::push, [&] {
    std::vector<counted_job> batch;
    for (const char* label : {"late2", "late3"}) {
      auto& r = f.add(label);
      batch.push_back(prepare(testing::probe(r.frame), r, {}, r.command_for(10)));
    }
    auto pushed = victim.push(std::span(batch));
    REQUIRE(pushed.size() == 2);
    f.track(f["late2"], std::move(pushed[0]));
    f.track(f["late3"], std::move(pushed[1]));
  });
  bool never_signalled_without_effect = false;
  f.clock.at(3000, sim::phase::other, [&] {
    never.set_value();  // v4 (and the jobs behind it) signal now: fence causality
    never_signalled_without_effect = true;
  });
  f.run();

  CHECK(outcome(f["v1"]) == "ok");
  CHECK(f["v1"].finished_at == 1000);
  CHECK(outcome(f["v2"]) == "ok");
  CHECK(f["v2"].finished_at == 2000);
  for (const char* label : {"v3", "v4", "v5", "late1", "late2", "late3"}) {
    INFO("job " << label);
    CHECK(outcome(f[label]) == "killed");
    CHECK(scheduled_outcome(f[label]) == "killed");
    CHECK_FALSE(f[label].fences.finished.cause().has_value());
    // v3 was prepared before the kill; v4 and v5 were never resumed; the late
    // jobs' bodies never started.
    CHECK(f[label].resumed == (std::string(label) == "v3"));
    // In push order, after v2 (2000); v4 was killed while its body waited for
    // `never`, so its signal, and those behind it, wait for that fence (3000).
    CHECK(f[label].finished_at == (std::string(label) == "v3" ? 2000 : 3000));
  }
  CHECK(f["late1"].fences.seqno() == 6);
  CHECK(f["late2"].fences.seqno() == 7);
  CHECK(f["late3"].fences.seqno() == 8);
  // The other entity: w1 runs once v3 no longer blocks; w2 fails through v3.
  CHECK(outcome(f["w1"]) == "ok");
  CHECK(f.run_at("w1") == 500);
  CHECK(f["w1"].finished_at == 2100);
  CHECK(outcome(f["w2"]) == "killed");
  CHECK(f["w2"].fences.finished.cause() == v3.finished.point());
  CHECK(f["w2"].finished_at == 2100);
  CHECK(never_signalled_without_effect);
  CHECK(f.run_order() == std::vector<std::string>{"v1", "v2", "w1"});
  f.check_all_retired();
}

TEST_CASE("a push to a killed entity during the pass that processed the kill loses no wake-up",
          "[lifetime][kill][threads]") {
  lifetime_fixture f(1);
  auto victim = f.sched.make_entity({.name = "victim"});
  auto host = f.sched.make_entity({.name = "host"});
  auto witness = f.sched.make_entity({.name = "witness"});
  // Queued for the first pass, in this order: the kill, the host's job (its body
  // holds the pass), a push to the killed entity, the witness's job.
  victim.kill();
  std::latch in_body(1), pushed(1);
  auto& h1 = f.add("h1");
  auto h1_job = hold_pass(testing::probe(h1.frame), h1, in_body, pushed, h1.command_for(100));
  f.push(host, h1, std::move(h1_job));
  f.push(victim, "dead1", {.duration = 10});
  f.push(witness, "w1", {.duration = 100});
  // While the pass is held in h1's body, after it processed the kill and before
  // it reached the victim's and the witness's pushes, another thread pushes to
  // the killed entity (the test's records are not touched by the held thread).
  std::thread other([&] {
    in_body.wait();
    f.push(victim, "dead2", {.duration = 10});
    pushed.count_down();
  });
  f.run();
  other.join();

  CHECK(outcome(h1) == "ok");
  CHECK(h1.finished_at == 100);
  CHECK(outcome(f["w1"]) == "ok");  // the witness's job must not be forgotten
  CHECK(f["w1"].finished_at == 200);
  for (const char* label : {"dead1", "dead2"}) {
    INFO("job " << label);
    CHECK(outcome(f[label]) == "killed");
    CHECK(f[label].finished_at == 0);
    CHECK(f[label].command.created.load() == 0);
  }
  CHECK(f.run_order() == std::vector<std::string>{"h1", "w1"});
  f.check_all_retired();
}

// ------------------------------------------------------------------ close

TEST_CASE("close: queued and waiting jobs still run, later pushes fail cancelled in order",
          "[lifetime][close]") {
  lifetime_fixture f(2);
  auto e = f.sched.make_entity({.name = "c"});
  promise dependency;
  f.push(e, "c1", {.duration = 100});
  f.push(e, "c2", {.duration = 100});
  f.push(e, "c3", {.duration = 100});  // behind credits
  f.push(e, "c4", {.duration = 100, .deps = {dependency.get_fence()}});
  f.clock.at(50, sim::phase::other, [&] { e.close(); });
  f.clock.at(60, sim::phase::push, [&] { f.push(e, "late", {.duration = 10}); });
  f.clock.at(150, sim::phase::other, [&] { dependency.set_value(); });
  f.run();

  const std::map<std::string, time_us> finished{{"c1", 100}, {"c2", 200}, {"c3", 300}, {"c4", 400}};
  for (const auto& [label, at] : finished) {
    INFO("job " << label);
    CHECK(outcome(f[label]) == "ok");
    CHECK(f[label].finished_at == at);
  }
  CHECK(outcome(f["late"]) == "cancelled");
  CHECK(scheduled_outcome(f["late"]) == "cancelled");
  CHECK(f["late"].finished_at == 400);  // after c4, its predecessor
  CHECK(f["late"].command.created.load() == 0);
  CHECK(f.run_order() == std::vector<std::string>{"c1", "c2", "c3", "c4"});
  f.check_all_retired();
}

TEST_CASE("destroying the entity handle while its jobs are queued: they still run", "[lifetime][close]") {
  lifetime_fixture f(1);
  std::optional<entity<counted_command>> e(f.sched.make_entity({.name = "d"}));
  auto other = f.sched.make_entity({.name = "g"});
  promise dependency;
  f.push(*e, "d1", {.duration = 100});
  f.push(*e, "d2", {.duration = 100});
  auto& d3 = f.push(*e, "d3", {.duration = 100, .deps = {dependency.get_fence()}});
  f.push(other, "g1", {.duration = 50, .deps = {d3.finished}});
  f.clock.at(10, sim::phase::other, [&] { e.reset(); });  // d1 on the ring, d2 queued, d3 waiting
  f.clock.at(150, sim::phase::other, [&] { dependency.set_value(); });
  f.run();

  const std::map<std::string, time_us> finished{{"d1", 100}, {"d2", 200}, {"d3", 300}, {"g1", 350}};
  for (const auto& [label, at] : finished) {
    INFO("job " << label);
    CHECK(outcome(f[label]) == "ok");
    CHECK(f[label].finished_at == at);
  }
  CHECK(f.run_order() == std::vector<std::string>{"d1", "d2", "d3", "g1"});
  f.check_all_retired();
}

// ------------------------------------------------------------------ shutdown

TEST_CASE("shutdown with a hung command, queued and waiting jobs, then pushes that fail at once",
          "[lifetime][shutdown]") {
  lifetime_fixture f(2);
  auto s = f.sched.make_entity({.name = "s"});
  auto t = f.sched.make_entity({.name = "t"});
  auto u = f.sched.make_entity({.name = "u"});
  promise never;  // kept alive by the test: the dependency never signals before shutdown
  f.push(s, "s1", {.effect = testing::fault::hang()});
  f.push(s, "s2", {.duration = 100});             // on the ring behind the hang
  auto& s3 = f.push(s, "s3", {.duration = 100});  // behind credits
  auto& t1 = f.push(t, "t1", {.duration = 100, .deps = {never.get_fence()}});
  f.push(t, "t2", {.duration = 100, .deps = {t1.finished}});
  f.push(u, "u1", {.duration = 100, .deps = {s3.finished}});  // another entity's queued job
  f.push(u, "u2", {.duration = 100});                         // behind u1

  fence done;
  long frames_at_done = -1, commands_at_done = -1;
  f.clock.at(1000, sim::phase::other, [&] {
    CHECK(f.ring.inner.in_flight() == 2);
    done = f.sched.shutdown(nanoseconds(0));
    f.others.watch(done, "shutdown", [&] {
      frames_at_done = f.frames_alive();
      commands_at_done = f.commands_alive();
    });
  });
  f.run();

  REQUIRE(done.valid());
  CHECK(done.signalled());
  CHECK_FALSE(done.error());
  CHECK(f.sched.is_shut_down());
  CHECK(frames_at_done == 0);
  CHECK(commands_at_done == 0);
  CHECK(f.ring.cancels == 1);
  CHECK(f.ring.inner.in_flight() == 0);
  for (const char* label : {"s1", "s2", "s3", "t1", "t2", "u1", "u2"}) {
    INFO("job " << label);
    CHECK(outcome(f[label]) == "shutdown");
    CHECK_FALSE(f[label].fences.finished.cause().has_value());
    CHECK(f[label].finished_at == 1000);
  }
  CHECK(scheduled_outcome(f["s1"]) == "ok");
  CHECK(scheduled_outcome(f["s2"]) == "ok");
  CHECK(scheduled_outcome(f["s3"]) == "shutdown");
  CHECK_FALSE(f["t1"].resumed);
  CHECK_FALSE(f["u1"].resumed);

  // Pushes after shutdown, from another thread while nobody runs the executor:
  // they fail `shutdown` at once and the frame is destroyed inside push.
  struct at_return {
    bool signalled = false;
    long frames = -1;
  };
  std::vector<at_return> returned;
  std::thread pusher([&] {
    auto& late = f.add("late");
    auto late_job = prepare(testing::probe(late.frame), late, {}, late.command_for(10));
    const auto& pushed = f.push(s, late, std::move(late_job));
    returned.push_back({pushed.finished.signalled() && pushed.scheduled().signalled(), late.frame.alive()});
    std::vector<counted_job> batch;
    for (const char* label : {"late_t1", "late_t2"}) {
      auto& r = f.add(label);
      batch.push_back(prepare(testing::probe(r.frame), r, {}, r.command_for(10)));
    }
    auto fences = t.push(std::span(batch));
    for (std::size_t i = 0; i < fences.size(); ++i) {
      auto& r = f[i == 0 ? "late_t1" : "late_t2"];
      returned.push_back({fences[i].finished.signalled(), r.frame.alive()});
      f.track(r, std::move(fences[i]));
    }
    auto born_dead = f.sched.make_entity({.name = "born_dead"});
    f.push(born_dead, "late_new", {.duration = 10});
    returned.push_back({f["late_new"].fences.finished.signalled(), f["late_new"].frame.alive()});
  });
  pusher.join();
  REQUIRE(returned.size() == 4);
  for (const auto& r : returned) {
    CHECK(r.signalled);
    CHECK(r.frames == 0);
  }
  f.ctx.restart();
  CHECK(f.ctx.poll() == 0);  // nothing was handed to the executor
  for (const char* label : {"late", "late_t1", "late_t2", "late_new"}) {
    INFO("job " << label);
    CHECK(outcome(f[label]) == "shutdown");
    CHECK(scheduled_outcome(f[label]) == "shutdown");
    CHECK(f[label].command.created.load() == 0);
  }
  CHECK(f["late"].fences.seqno() == 4);
  CHECK(f["late_t2"].fences.seqno() == 4);
  never.set_value();  // nobody waits for it any more
  f.check_all_retired();
}

TEST_CASE("an entity made, used and dropped after shutdown() was requested but before it ran",
          "[lifetime][shutdown]") {
  lifetime_fixture f(1);
  auto e = f.sched.make_entity({.name = "e"});
  f.push(e, "running", {.duration = 100});
  fence done;
  f.clock.at(50, sim::phase::other, [&] {
    done = f.sched.shutdown(nanoseconds(0));
    // The scheduler has not processed the request yet: this entity is made
    // while it still runs, and its handle is gone before the request is processed.
    auto late = f.sched.make_entity({.name = "late"});
    f.push(late, "on_late", {.duration = 10});
  });
  f.run();
  REQUIRE(done.valid());
  CHECK(done.signalled());
  CHECK(outcome(f["running"]) == "shutdown");
  CHECK(outcome(f["on_late"]) == "shutdown");
  CHECK(f["on_late"].finished_at == 50);
  CHECK_FALSE(f["on_late"].resumed);
  f.check_all_retired();
}

TEST_CASE("an entity handle outlives its scheduler: pushes fail shutdown on the caller's thread",
          "[lifetime][shutdown]") {
  asio::io_context ctx;
  sim::virtual_clock clock;
  counted_ring hardware(clock);
  std::optional<scheduler<counted_command>> sched(std::in_place, ctx.get_executor(), hardware,
                                                  scheduler_options{.credit_limit = 1});
  auto e = sched->make_entity({.name = "orphan"});
  job_record first("first", 1), late("late", 2);
  auto a = e.push(prepare(testing::probe(first.frame), first, {}, first.command_for(100)));
  testing::fence_checker checker;
  long first_frames_at_finish = -1, first_commands_at_finish = -1;
  checker.watch(a.finished, "first", [&] {
    first_frames_at_finish = first.frame.alive();
    first_commands_at_finish = first.command.alive();
  });
  checker.watch(a.scheduled(), "first.scheduled");
  fence done;
  clock.at(50, sim::phase::other, [&] { done = sched->shutdown(nanoseconds(0)); });
  clock.run(ctx);
  REQUIRE(done.valid());
  CHECK(done.signalled());
  CHECK(a.finished.error() == make_error_code(errc::shutdown));
  CHECK(first_frames_at_finish == 0);
  CHECK(first_commands_at_finish == 0);
  sched.reset();  // the scheduler is gone; the handle is not

  auto late_job = prepare(testing::probe(late.frame), late, {}, late.command_for(10));
  auto b = e.push(std::move(late_job));
  CHECK(b.finished.signalled());
  CHECK(b.finished.error() == make_error_code(errc::shutdown));
  CHECK(b.scheduled().error() == make_error_code(errc::shutdown));
  CHECK(b.seqno() == 2);
  CHECK(late.frame.alive() == 0);
  CHECK(late.command.created.load() == 0);
  e.close();
  e.kill();
  e.set_priority(priority::high);
  CHECK(e.drain().signalled());
  checker.watch(b.finished, "late");
  checker.watch(b.scheduled(), "late.scheduled");
  CHECK(checker.all_exactly_once());
  CHECK(hardware.cancels == 1);
  ctx.restart();
  CHECK(ctx.poll() == 0);
}

// ------------------------------------------------------------------ scopes

TEST_CASE("scope request_stop and join with running, queued and waiting jobs", "[lifetime][scope]") {
  lifetime_fixture f(2);
  auto a = f.sched.make_entity({.name = "a"});
  auto b = f.sched.make_entity({.name = "b"});
  promise never;
  scope s;
  f.push(a, "a1", {.duration = 500, .in = &s});  // running
  f.push(a, "a2", {.duration = 500, .in = &s});  // running (on the ring behind a1)
  f.push(a, "a3", {.duration = 100, .in = &s});  // queued behind credits
  f.push(b, "b1", {.duration = 100, .deps = {never.get_fence()}, .in = &s});  // waiting
  f.push(b, "b2", {.duration = 100});                                         // not in the scope, behind b1
  f.push(a, "a4", {.duration = 100});                                         // not in the scope, behind a3
  CHECK(s.active() == 4);

  const std::vector<std::string> in_scope{"a1", "a2", "a3", "b1"};
  fence joined = s.join();
  long scope_frames_at_join = -1, scope_commands_at_join = -1;
  std::optional<time_us> joined_at;
  f.others.watch(joined, "join", [&] {
    scope_frames_at_join = scope_commands_at_join = 0;
    for (const auto& label : in_scope) {
      scope_frames_at_join += f[label].frame.alive();
      scope_commands_at_join += f[label].command.alive();
    }
    joined_at = f.clock.now();
  });
  f.clock.at(100, sim::phase::other, [&] { s.request_stop(); });
  f.clock.at(1500, sim::phase::other, [&] { never.set_value(); });
  f.run();

  CHECK(s.stop_requested());
  CHECK(joined.signalled());
  CHECK_FALSE(joined.error());
  // a2 retires at 1000, then a3 (cancelled) signals after it; b1, cancelled at
  // 100 while its body waited for `never`, signals once `never` has (causality).
  CHECK(joined_at == 1500);
  CHECK(scope_frames_at_join == 0);
  CHECK(scope_commands_at_join == 0);
  CHECK(s.active() == 0);
  CHECK(outcome(f["a1"]) == "ok");
  CHECK(outcome(f["a2"]) == "ok");
  CHECK(outcome(f["a3"]) == "cancelled");
  CHECK(f["a3"].finished_at == 1000);
  CHECK(outcome(f["b1"]) == "cancelled");
  CHECK(f["b1"].finished_at == 1500);
  CHECK_FALSE(f["b1"].resumed);
  CHECK(outcome(f["b2"]) == "ok");
  CHECK(f["b2"].finished_at == 1500);  // ran 1000 to 1100, signals after b1
  CHECK(outcome(f["a4"]) == "ok");
  CHECK(f["a4"].finished_at == 1200);
  CHECK(f.run_order() == std::vector<std::string>{"a1", "a2", "b2", "a4"});

  // A push through the joined scope is refused: it fails cancelled, in order.
  f.push(a, "refused", {.duration = 10, .in = &s});
  f.run();
  CHECK(outcome(f["refused"]) == "cancelled");
  CHECK(s.active() == 0);
  never.set_value();
  f.check_all_retired();
}

TEST_CASE("scope join waits for a job suspended on a dependency", "[lifetime][scope]") {
  lifetime_fixture f(1);
  auto e = f.sched.make_entity();
  promise later;
  scope s;
  f.push(e, "x1", {.duration = 100, .in = &s});
  f.push(e, "x2", {.duration = 100, .deps = {later.get_fence()}, .in = &s});
  fence joined = s.join();
  long frames_at_join = -1;
  std::optional<time_us> joined_at;
  f.others.watch(joined, "join", [&] {
    frames_at_join = f.frames_alive() + f.commands_alive();
    joined_at = f.clock.now();
  });
  f.clock.at(300, sim::phase::other, [&] { later.set_value(); });
  f.run();
  CHECK(joined_at == 400);
  CHECK(frames_at_join == 0);
  CHECK(outcome(f["x1"]) == "ok");
  CHECK(outcome(f["x2"]) == "ok");
  CHECK(f["x2"].resumed);
  f.check_all_retired();
}

// ------------------------------------------------------------------ broken promise

TEST_CASE("a promise destroyed unsignalled fails the job waiting on its fence with broken",
          "[lifetime][fence]") {
  lifetime_fixture f(1);
  auto a = f.sched.make_entity({.name = "a"});
  auto b = f.sched.make_entity({.name = "b"});
  auto c = f.sched.make_entity({.name = "c"});
  std::optional<promise> lost(std::in_place);
  const fence lost_fence = lost->get_fence();
  auto& a1 = f.push(a, "a1", {.duration = 100, .deps = {lost_fence}});
  f.push(a, "a2", {.duration = 100});
  f.push(b, "b1", {.duration = 100, .deps = {a1.finished}});
  std::error_code seen_by_c1;
  auto& c1 = f.add("c1");
  auto c1_job = tolerate(testing::probe(c1.frame), c1, lost_fence, seen_by_c1, c1.command_for(50));
  f.push(c, c1, std::move(c1_job));
  f.clock.at(100, sim::phase::other, [&] { lost.reset(); });
  f.run();

  CHECK(lost_fence.error() == make_error_code(errc::broken));
  for (const char* label : {"a1", "b1"}) {
    INFO("job " << label);
    CHECK(outcome(f[label]) == "broken");
    CHECK(f[label].fences.finished.cause() == lost_fence.point());
    CHECK_FALSE(f[label].resumed);
    CHECK(f[label].finished_at == 100);
  }
  CHECK(seen_by_c1 == make_error_code(errc::broken));
  CHECK(outcome(c1) == "ok");
  CHECK(c1.finished_at == 250);
  CHECK(outcome(f["a2"]) == "ok");
  CHECK(f["a2"].finished_at == 200);
  CHECK(f.run_order() == std::vector<std::string>{"a2", "c1"});
  f.check_all_retired();
}

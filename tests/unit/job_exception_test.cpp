// A job whose body, or whose ring, throws: the job fails, the exception's
// what() is logged at error level naming the entity and the point, and
// scheduler_options::on_exception receives it.
#include "cosched/job_exception.hpp"

#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <asio/io_context.hpp>

#include "captured_log.hpp"
#include "catch.hpp"
#include "cosched/cosched.hpp"

using namespace cosched;
using testing::captured_log;

namespace {

struct command {
  bool ring_throws = false;
};

/// Signals each command at once; throws from run() when the command asks.
class throwing_ring final : public ring<command> {
 public:
  fence run(command& c) override {
    ++runs;
    if (c.ring_throws) throw std::runtime_error("the ring refused the command");
    return fence::make_signalled();
  }
  void cancel_all() noexcept override {}
  int runs = 0;
};

/// What on_exception received, copied.
struct reported {
  job_exception::origin from;
  std::string entity;
  std::uint64_t seqno;
  std::error_code error;
  std::string what;
  bool has_exception;
};

job<command> succeeds() { co_return command{}; }
job<command> throws_runtime_error() {
  throw std::runtime_error("texture 7 is 0 pixels wide");
  co_return command{};
}
job<command> throws_system_error() {
  throw std::system_error(std::make_error_code(std::errc::device_or_resource_busy), "the queue is full");
  co_return command{};
}
job<command> throws_int() {
  throw 42;
  co_return command{};
}
job<command> ring_throws() { co_return command{true}; }

}  // namespace

TEST_CASE("a job that throws: it fails, the log names the entity, the point and what(), on_exception gets it",
          "[scheduler][exception][log]") {
  captured_log log;
  asio::io_context ctx(1);
  throwing_ring hardware;
  std::vector<reported> reports;
  scheduler<command> sched(ctx.get_executor(), hardware, {.on_exception = [&](const job_exception& e) {
                             reports.push_back({e.from, std::string(e.entity), e.point.seqno, e.error,
                                                std::string(e.what), static_cast<bool>(e.exception)});
                             // Reported before the job's fence signals.
                             CHECK_FALSE(e.exception == nullptr);
                           }});
  auto render = sched.make_entity({.name = "render"});
  auto a = render.push(succeeds());
  auto b = render.push(throws_runtime_error());
  auto c = render.push(throws_system_error());
  auto d = render.push(throws_int());
  auto e = render.push(ring_throws());
  auto f = render.push(succeeds());
  ctx.run();

  CHECK_FALSE(a.finished.error());
  CHECK(b.finished.error() == make_error_code(errc::exception));
  CHECK(c.finished.error() == std::make_error_code(std::errc::device_or_resource_busy));
  CHECK(d.finished.error() == make_error_code(errc::exception));
  CHECK(e.finished.error() == make_error_code(errc::exception));
  CHECK_FALSE(f.finished.error());
  CHECK(hardware.runs == 3);  // a, e (threw), f

  REQUIRE(reports.size() == 4);
  CHECK(reports[0].from == job_exception::origin::body);
  CHECK(reports[0].entity == "render");
  CHECK(reports[0].seqno == 2);
  CHECK(reports[0].error == make_error_code(errc::exception));
  CHECK(reports[0].what == "texture 7 is 0 pixels wide");
  CHECK(reports[0].has_exception);
  CHECK(reports[1].from == job_exception::origin::body);
  CHECK(reports[1].seqno == 3);
  CHECK(reports[1].error == std::make_error_code(std::errc::device_or_resource_busy));
  CHECK(reports[1].what ==
        std::system_error(std::make_error_code(std::errc::device_or_resource_busy), "the queue is full")
            .what());
  CHECK(reports[2].seqno == 4);
  CHECK(reports[2].what == "(an exception not derived from std::exception)");
  CHECK(reports[3].from == job_exception::origin::ring);
  CHECK(reports[3].seqno == 5);
  CHECK(reports[3].what == "the ring refused the command");
  CHECK(reports[3].error == make_error_code(errc::exception));

  const std::string text = log.text();
  CHECK(text.find("cosched::scheduler: job 2 of entity 'render': its body threw: texture 7 is 0 pixels wide; "
                  "the job fails `exception`\n") != std::string::npos);
  CHECK(text.find(
            "cosched::scheduler: job 4 of entity 'render': its body threw: (an exception not derived from "
            "std::exception); the job fails `exception`\n") != std::string::npos);
  CHECK(text.find("cosched::scheduler: job 5 of entity 'render': its ring, running its command, threw: the "
                  "ring refused "
                  "the command; the job fails `exception`\n") != std::string::npos);

  auto down = sched.shutdown();
  ctx.restart();
  ctx.run();
  CHECK(down.signalled());
}

TEST_CASE("an on_exception handler that throws is logged, and the job's outcome stands",
          "[scheduler][exception][log]") {
  captured_log log;
  asio::io_context ctx(1);
  throwing_ring hardware;
  int calls = 0;
  scheduler<command> sched(ctx.get_executor(), hardware, {.on_exception = [&](const job_exception&) {
                             ++calls;
                             throw std::logic_error("handler failed");
                           }});
  auto queue = sched.make_entity({.name = "q"});
  auto bad = queue.push(throws_runtime_error());
  auto next = queue.push(succeeds());
  ctx.run();
  CHECK(calls == 1);
  CHECK(bad.finished.error() == make_error_code(errc::exception));
  CHECK_FALSE(next.finished.error());
  CHECK(log.text().find("cosched::scheduler: scheduler_options::on_exception threw: handler failed\n") !=
        std::string::npos);
  auto down = sched.shutdown();
  ctx.restart();
  ctx.run();
  CHECK(down.signalled());
}

// A tour of cosched's API in one program (built and run by the test suite):
// a ring backed by a "device" thread whose completions are eventfds (kernel
// fences), the io_uring run loop and reactor, entities with priorities, jobs
// that await fences, a failing job and its dependents, a scope, and shutdown.
// It checks what it prints and exits non-zero if anything differs.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <cosched/cosched.hpp>
#include <cosched/reactor.hpp>
#include <cosched/uring_context.hpp>

using namespace std::chrono_literals;

namespace {

// What a job hands to the hardware.
struct toy_cmd {
  std::string name;
  std::chrono::microseconds work{100};
};

// A ring whose "GPU" is a thread: each command runs for its duration, then the
// device writes the command's eventfd, which the reactor turns into the
// command's hardware fence.
class toy_gpu final : public cosched::ring<toy_cmd> {
 public:
  explicit toy_gpu(cosched::reactor& reactor) : reactor_(reactor), device_([this] { device_loop(); }) {}
  ~toy_gpu() override {
    {
      std::lock_guard guard(lock_);
      quit_ = true;
    }
    wake_.notify_one();
    device_.join();
    for (int fd : fds_) ::close(fd);
  }

  cosched::fence run(toy_cmd& cmd) override {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return cosched::fence::make_signalled(std::error_code(errno, std::generic_category()));
    fds_.push_back(fd);
    ran_.push_back(cmd.name);
    {
      std::lock_guard guard(lock_);
      queue_.push_back({fd, cmd.work});
    }
    wake_.notify_one();
    return reactor_.wait_readable(fd);  // a kernel fence: readable once the device wrote it
  }
  // The device finishes what it has; nothing references a command afterwards.
  void cancel_all() noexcept override {
    std::unique_lock guard(lock_);
    idle_.wait(guard, [this] { return queue_.empty() && !busy_; });
  }
  const std::vector<std::string>& ran() const { return ran_; }

 private:
  struct work {
    int fd;
    std::chrono::microseconds duration;
  };
  void device_loop() {
    std::unique_lock guard(lock_);
    for (;;) {
      wake_.wait(guard, [this] { return quit_ || !queue_.empty(); });
      if (queue_.empty()) return;
      const work w = queue_.front();
      queue_.pop_front();
      busy_ = true;
      guard.unlock();
      std::this_thread::sleep_for(w.duration);
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto n = ::write(w.fd, &one, sizeof one);
      guard.lock();
      busy_ = false;
      idle_.notify_all();
    }
  }

  cosched::reactor& reactor_;
  std::vector<int> fds_;          // the executor's thread only
  std::vector<std::string> ran_;  // the executor's thread only
  std::mutex lock_;
  std::condition_variable wake_, idle_;
  std::deque<work> queue_;
  bool busy_ = false;
  bool quit_ = false;
  std::thread device_;
};

// A job: waits for its inputs (a failed input fails it without resuming it),
// then returns the command that the scheduler runs on the ring.
cosched::job<toy_cmd> render(std::string name, std::vector<cosched::fence> inputs) {
  for (auto& input : inputs) co_await input;
  co_return toy_cmd{std::move(name)};
}

// A job that inspects a failure instead of failing with it.
cosched::job<toy_cmd> report(cosched::fence input, std::string* seen) {
  const std::error_code ec = co_await cosched::try_wait(input);
  *seen = ec ? cosched::error_name(ec) : "ok";
  co_return toy_cmd{"report"};
}

// A job that fails by itself.
cosched::job<toy_cmd> broken_upload() { co_return cosched::fail(std::make_error_code(std::errc::io_error)); }

int failures = 0;
void expect(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

}  // namespace

int main() {
  // The scheduler thread's loop: waits in io_uring for handlers, timers and fences.
  cosched::uring_context ctx;
  cosched::reactor reactor(ctx);
  toy_gpu gpu(reactor);
  cosched::scheduler<toy_cmd> sched(ctx.get_executor(), gpu, {.credit_limit = 2, .timeout = 2s});

  auto ui = sched.make_entity({.prio = cosched::priority::high, .name = "ui"});
  auto bg = sched.make_entity({.prio = cosched::priority::low, .name = "background"});

  // A chain across entities: the background upload feeds the UI's frame.
  auto upload = bg.push(render("upload", {}));
  auto frame = ui.push(render("frame", {upload.finished}));

  // A failure and what it does to its dependents.
  auto bad = bg.push(broken_upload());
  auto dependent = ui.push(render("uses-bad-upload", {bad.finished}));
  std::string seen;
  auto reporter = ui.push(report(bad.finished, &seen));

  // A scope: jobs pushed through it join it; join() signals once they retired.
  cosched::scope batch;
  std::vector<cosched::fence> batch_done;
  batch_done.reserve(4);
  for (int i = 0; i < 4; ++i)
    batch_done.push_back(bg.push(render("batch-" + std::to_string(i), {}), {.in = &batch}).finished);
  auto joined = batch.join();

  // Shutdown once the scope has joined; run() returns when nothing is left.
  bool shut_down = false;
  joined.async_wait(ctx.get_executor(), [&](std::error_code) {
    sched.shutdown(1s).async_wait(ctx.get_executor(), [&](std::error_code) {
      shut_down = true;
      ctx.stop();
    });
  });
  ctx.run();

  expect(shut_down, "the scheduler shut down after the scope joined");
  expect(!upload.finished.error() && !frame.finished.error(),
         "upload, then the frame that waited for it, succeeded");
  expect(bad.finished.error() == std::errc::io_error, "the broken upload failed with EIO");
  expect(
      dependent.finished.error() == std::errc::io_error && dependent.finished.cause() == bad.finished.point(),
      "its dependent failed with EIO, cause: the broken upload");
  expect(seen == "EIO" && !reporter.finished.error(), "try_wait saw EIO and the reporting job went on");
  bool batch_ok = true;
  for (auto& f : batch_done) batch_ok = batch_ok && f.signalled() && !f.error();
  expect(batch_ok, "the scope's four jobs succeeded before join() signalled");
  const auto& ran = gpu.ran();
  expect(std::find(ran.begin(), ran.end(), "uses-bad-upload") == ran.end(),
         "the failed dependent never reached the ring");
  const auto at = [&](const char* name) { return std::find(ran.begin(), ran.end(), name) - ran.begin(); };
  expect(at("upload") < at("frame"), "the upload ran before the frame");
  std::printf("ring order:");
  for (const auto& name : ran) std::printf(" %s", name.c_str());
  std::printf("\n%s\n", failures ? "api_tour: FAILED" : "api_tour: all as expected");
  return failures ? 1 : 0;
}

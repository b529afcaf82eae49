// Shared pieces of cosched-bench: clocks, pinning, eventfds, statistics, the
// result table, and a fire-and-forget coroutine for the peer implementations.
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace cosched_bench {

// ------------------------------------------------------------------ clocks

inline std::uint64_t read_clock(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return std::uint64_t(ts.tv_sec) * 1000000000ull + std::uint64_t(ts.tv_nsec);
}
// One-way latencies are differences of this clock taken on two threads, so it
// must be a system-wide clock (MONOTONIC is; the TSC-backed vDSO keeps it cheap).
inline std::uint64_t now_ns() { return read_clock(CLOCK_MONOTONIC); }
inline std::uint64_t thread_cpu_ns() { return read_clock(CLOCK_THREAD_CPUTIME_ID); }

// Fatal errors, on any thread. The device and peer threads may still be
// running, so the process ends without exit()'s destruction of the static
// objects they may be using; what was written so far is flushed first.
[[noreturn]] inline void end_failed() {
  std::fflush(nullptr);
  std::_Exit(1);
}
[[noreturn]] inline void die(const char* what, int err) {
  std::fprintf(stderr, "cosched-bench: %s: %s\n", what, std::generic_category().message(err).c_str());
  end_failed();
}
[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "cosched-bench: %s\n", what);
  end_failed();
}

// ------------------------------------------------------------------ configuration

struct config {
  bool quick = false;
  int reps = 5;
  bool pin = true;  // COSCHED_BENCH_NOPIN=1 clears it
  long cpus = 1;
};

// The scheduler side runs on CPU 0 and the device on CPU 1, so that a wake-up
// always crosses CPUs (as a GPU interrupt does) and neither thread competes
// with the other for its CPU.
inline void pin_to(const config& cfg, int cpu) {
  if (!cfg.pin || cfg.cpus <= 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % cfg.cpus, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
// Threads inherit their creator's affinity; a thread that a real runtime would
// not pin must be released from the pinned main thread's CPU explicitly.
inline void unpin(const config& cfg) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (long i = 0; i < cfg.cpus && i < CPU_SETSIZE; ++i) CPU_SET(i, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// The device waits for the scheduler by spinning, then yielding: sleeping would
// add a second kernel wake-up to every sample, and a pure spin would starve the
// scheduler when both threads end up on one CPU (2-vCPU box, unpinned runs).
class backoff {
 public:
  void pause() {
    if (++spins_ < 256)
      cpu_relax();
    else
      sched_yield();
  }

 private:
  unsigned spins_ = 0;
};

// ------------------------------------------------------------------ sleeping threads

inline pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// Whether the threads that wait for a signal are blocked in the kernel. The
// device checks this before every signal: each sample must measure a wake-up
// of a sleeping scheduler, whatever work that scheduler still did after it had
// acknowledged the previous signal (a scheduler still busy when the next signal
// comes would skip the wake-up and look faster than it is).
class sleep_probe {
 public:
  void watch(pid_t tid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", int(tid));
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open /proc/self/task/<tid>/stat", errno);
    fds_.push_back(fd);
  }
  ~sleep_probe() {
    for (int fd : fds_) ::close(fd);
  }
  sleep_probe() = default;
  sleep_probe(const sleep_probe&) = delete;
  sleep_probe& operator=(const sleep_probe&) = delete;

  // Spins (then yields) until every watched thread is blocked. A waiting side
  // that never blocks (one that spins for its events) is given up on after a
  // bound; such signals are counted in `awake`.
  void wait_until_asleep() {
    const std::uint64_t give_up = now_ns() + 5'000'000;
    backoff b;
    while (!all_asleep()) {
      if (now_ns() > give_up) {
        ++awake;
        return;
      }
      b.pause();
    }
  }

  std::uint64_t awake = 0;

 private:
  bool all_asleep() const {
    for (int fd : fds_) {
      char buf[512];
      const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      if (n <= 0) return true;  // the thread is gone
      buf[n] = '\0';
      // "tid (comm) S ...": the state follows the last ')'.
      const char* p = std::strrchr(buf, ')');
      if (!p || p[1] != ' ' || (p[2] != 'S' && p[2] != 'D')) return false;
    }
    return true;
  }

  std::vector<int> fds_;
};

// ------------------------------------------------------------------ eventfds

inline int make_eventfd(bool nonblocking) {
  const int fd = ::eventfd(0, EFD_CLOEXEC | (nonblocking ? EFD_NONBLOCK : 0));
  if (fd < 0) die("eventfd", errno);
  return fd;
}
inline void fd_signal(int fd) {
  const std::uint64_t one = 1;
  while (::write(fd, &one, sizeof one) != sizeof one) {
    if (errno != EINTR) die("eventfd write", errno);
  }
}
// Resets a non-blocking eventfd; returns the count it held (0: it was not signalled).
inline std::uint64_t fd_drain(int fd) {
  std::uint64_t value = 0;
  return ::read(fd, &value, sizeof value) == sizeof value ? value : 0;
}
inline std::uint64_t fd_wait(int fd) {
  std::uint64_t value = 0;
  while (::read(fd, &value, sizeof value) != sizeof value) {
    if (errno != EINTR) die("eventfd read", errno);
  }
  return value;
}

// Returns the soft limit reached.
inline rlim_t raise_nofile(rlim_t wanted) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < wanted) {
    rl.rlim_cur = std::min(wanted, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

// ------------------------------------------------------------------ statistics

struct spread {
  double median = 0, lo = 0, hi = 0;
};

inline spread summarize(std::vector<double> v) {
  spread s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.lo = v.front();
  s.hi = v.back();
  return s;
}

// Nearest-rank percentile; sorts `v`.
inline double percentile(std::vector<std::uint64_t>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto k = static_cast<std::size_t>(p / 100.0 * double(v.size()));
  if (k >= v.size()) k = v.size() - 1;
  return double(v[k]);
}

// ------------------------------------------------------------------ results

// Every figure and ratio of the run, in report order. Keys are declared up front
// so that the JSON always has the same keys (null for groups not run).
class results {
 public:
  void declare(const std::string& key) {
    if (!find(key)) values_.push_back({key, std::nullopt});
  }
  void set(const std::string& key, double value) {
    declare(key);
    find(key)->second = value;
  }
  std::optional<double> get(const std::string& key) const {
    for (const auto& kv : values_)
      if (kv.first == key) return kv.second;
    return std::nullopt;
  }
  const std::vector<std::pair<std::string, std::optional<double>>>& all() const { return values_; }

 private:
  std::pair<std::string, std::optional<double>>* find(const std::string& key) {
    for (auto& kv : values_)
      if (kv.first == key) return &kv;
    return nullptr;
  }
  std::vector<std::pair<std::string, std::optional<double>>> values_;
};

// ------------------------------------------------------------------ coroutines

// An eager coroutine that frees itself when it finishes; the peers' "job". A
// frame left suspended is destroyed through its handle by whoever holds it.
struct detached {
  struct promise_type {
    detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

// Suspends and leaves the handle in `slot` for the mechanism to resume.
struct park {
  std::coroutine_handle<>& slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { slot = h; }
  void await_resume() const noexcept {}
};

}  // namespace cosched_bench

// Sim commands as calibrated GPU work on a virtgpu ring, with emulated faults.
#include "cosched/virtgpu/calibrated_ring.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

#include "cosched/drm/syncobj.hpp"
#include "cosched/error.hpp"
#include "cosched/virtgpu/ring.hpp"
#include "device_state.hpp"

namespace cosched::virtgpu {

// ------------------------------------------------------------------ calibration

std::uint32_t calibration::units_for(sim::time_us duration_us) const noexcept {
  const double left = static_cast<double>(duration_us) - empty_us;
  if (!(left > 0) || !(unit_us > 0)) return 0;
  const double units = std::round(left / unit_us);
  return units >= max_units ? max_units : static_cast<std::uint32_t>(units);
}

// ------------------------------------------------------------------ workload

namespace {

constexpr std::uint32_t work_side = 1024;     // the two work textures
constexpr std::uint32_t verify_width = 4096;  // 2048 jobs per row of 2x2 regions
constexpr std::uint64_t jobs_per_row = verify_width / 2;
constexpr std::uint64_t max_verified_jobs = jobs_per_row * 8192;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

workload::workload(const device& dev, std::size_t jobs, bool verify)
    : device_(dev),
      from_(texture::create(dev, work_side, work_side, texture::backing::host_only)),
      to_(texture::create(dev, work_side, work_side, texture::backing::host_only)),
      jobs_(jobs),
      submitted_(jobs, false) {
  if (!verify) return;
  if (jobs > max_verified_jobs)
    throw std::invalid_argument("cosched::virtgpu::workload: verification covers at most " +
                                std::to_string(max_verified_jobs) + " jobs, not " + std::to_string(jobs));
  const auto rows =
      static_cast<std::uint32_t>(std::max<std::uint64_t>(1, (jobs + jobs_per_row - 1) / jobs_per_row));
  verify_texture_ = texture::create(dev, verify_width, rows * 2);
  // No job's value is 0: a region nobody wrote reads as 0.
  verify_texture_.upload(std::vector<std::uint32_t>(std::size_t{verify_width} * rows * 2, 0));
}

std::uint32_t workload::value_of(std::uint64_t tag) noexcept {
  std::uint64_t v = (tag + 1) * 0x9E3779B97F4A7C15ULL;
  v ^= v >> 29;
  return static_cast<std::uint32_t>(v) | 1u;
}

region workload::region_of(std::uint64_t tag) noexcept {
  return {static_cast<std::uint32_t>(tag % jobs_per_row) * 2,
          static_cast<std::uint32_t>(tag / jobs_per_row) * 2, 2, 2};
}

command workload::make(const sim::command& cmd, sim::time_us work_us) const {
  command c(device_);
  const std::uint32_t side = calibration_.unit_side;
  const std::uint32_t per_row = work_side / side;
  const std::uint32_t units = calibration_.units_for(work_us);
  for (std::uint32_t i = 0; i < units; ++i) {
    const std::uint32_t cell = i % (per_row * per_row);
    const std::uint32_t x = (cell % per_row) * side, y = (cell / per_row) * side;
    c.copy_region(to_, x, y, from_, {x, y, side, side});
  }
  if (verify_texture_ && cmd.tag < jobs_) {
    const std::uint32_t v = value_of(cmd.tag);
    const std::uint32_t texels[4] = {v, v, v, v};
    c.write_region(verify_texture_, region_of(cmd.tag), texels);
  }
  return c;
}

const calibration& workload::calibrate() {
  driver d(device_);
  auto timeline = drm::timeline_syncobj::create(device_.drm());
  std::uint64_t point = 0;
  // Submits `c` alone and waits for it: microseconds from submit to signal.
  auto timed = [&](command& c) {
    const drm::submission s{{timeline.handle(), ++point}, {}};
    const auto start = std::chrono::steady_clock::now();
    if (const auto ec = d.submit(c, s)) detail::throw_error(ec.value(), "workload::calibrate (EXECBUFFER)");
    if (const int err = detail::wait_point(device_.fd(), timeline.handle(), point, std::chrono::seconds(20)))
      detail::throw_error(err, "workload::calibrate (waiting for a calibration submission)");
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  };
  constexpr std::uint32_t units = 32;
  command empty(device_);
  command loaded(device_);
  const std::uint32_t side = calibration_.unit_side, per_row = work_side / side;
  for (std::uint32_t i = 0; i < units; ++i) {
    const std::uint32_t cell = i % (per_row * per_row);
    const std::uint32_t x = (cell % per_row) * side, y = (cell / per_row) * side;
    loaded.copy_region(to_, x, y, from_, {x, y, side, side});
  }
  for (int i = 0; i < 3; ++i) timed(empty);  // warm-up
  std::vector<double> empties, loads;
  for (int i = 0; i < 9; ++i) empties.push_back(timed(empty));
  for (int i = 0; i < 5; ++i) loads.push_back(timed(loaded));
  calibration_.empty_us = median(empties);
  calibration_.unit_us = std::max(0.5, (median(loads) - calibration_.empty_us) / units);
  calibration_.max_units = static_cast<std::uint32_t>(std::clamp(10e6 / calibration_.unit_us, 1.0, 1e6));
  return calibration_;
}

void workload::submitted(std::uint64_t tag) {
  if (tag < jobs_) submitted_[tag] = true;
}

std::vector<std::optional<bool>> workload::verify() const {
  std::vector<std::optional<bool>> out(jobs_);
  if (!verify_texture_) return out;
  const auto texels = verify_texture_.read();
  for (std::size_t tag = 0; tag < jobs_; ++tag) {
    if (!submitted_[tag]) continue;
    const region r = region_of(tag);
    const std::uint32_t v = value_of(tag);
    bool right = true;
    for (std::uint32_t y = r.y; y < r.y + r.height; ++y)
      for (std::uint32_t x = r.x; x < r.x + r.width; ++x)
        right = right && texels[std::size_t{y} * verify_width + x] == v;
    out[tag] = right;
  }
  return out;
}

// ------------------------------------------------------------------ calibrated_ring

struct calibrated_ring::state : std::enable_shared_from_this<state> {
  state(workload& w, drm::fence_source& source, std::chrono::steady_clock::time_point t0)
      : work(w),
        gpu(source, driver(w.get_device()), ring_options),
        executor(source.get_reactor().get_executor()),
        epoch(t0) {}

  sim::time_us now() const {
    return static_cast<sim::time_us>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - epoch)
            .count());
  }

  // The GPU has done submission `id` (or its fence failed, as at a reset).
  void complete(std::uint64_t id, std::error_code ec) {
    auto it = submitted.find(id);
    if (it == submitted.end()) return;  // settled already (cancel_all)
    auto entry = std::move(it->second);
    submitted.erase(it);
    auto& record = log[entry.record];
    // The GPU runs the ring's commands in order: this one began when the
    // previous one ended, or when it was run if that was later.
    record.start = std::max(record.run_at, last_end);
    record.end = std::max(record.start, now());
    last_end = record.end;
    entry.done.signal(ec ? ec : entry.emulated);
  }

  struct in_flight {
    std::size_t record;
    promise done;
    std::error_code emulated;  // error:<ERRNO>
  };

  workload& work;
  virtgpu::ring gpu;
  asio::any_io_executor executor;  // the reactor's: where the GPU's fences complete
  const std::chrono::steady_clock::time_point epoch;
  std::map<std::uint64_t, in_flight> submitted;  // by submission id, in submission order
  std::vector<promise> held;                     // a hang and what was run after it
  std::vector<sim::run_record> log;
  sim::time_us last_end = 0;
  std::uint64_t next_id = 0;
  bool stuck = false;
};

calibrated_ring::calibrated_ring(workload& w, drm::fence_source& source,
                                 std::chrono::steady_clock::time_point epoch)
    : state_(std::make_shared<state>(w, source, epoch)) {}

calibrated_ring::~calibrated_ring() = default;

fence calibrated_ring::run(sim::command& cmd) {
  auto& s = *state_;
  const sim::time_us now = s.now();
  sim::run_record record{cmd.tag, now, now, true, 0};
  if (s.stuck || cmd.effect.what == sim::fault::kind::hang) {
    // Never submitted: nothing behind a hang starts.
    s.stuck = true;
    record.finishes = false;
    s.log.push_back(record);
    promise held;
    fence f = held.get_fence();
    s.held.push_back(std::move(held));
    return f;
  }
  const sim::time_us work_us =
      cmd.effect.what == sim::fault::kind::slow ? cmd.effect.slow_us : cmd.duration_us;
  command gpu_work = s.work.make(cmd, work_us);
  const fence hardware = s.gpu.run(gpu_work);
  s.work.submitted(cmd.tag);
  s.log.push_back(record);
  const std::uint64_t id = s.next_id++;
  promise done;
  fence f = done.get_fence();
  std::error_code emulated;
  if (cmd.effect.what == sim::fault::kind::error)
    emulated = {cmd.effect.errno_value, std::generic_category()};
  s.submitted.emplace(id, state::in_flight{s.log.size() - 1, std::move(done), emulated});
  hardware.async_wait(s.executor, [weak = std::weak_ptr<state>(state_), id](std::error_code ec) {
    if (auto self = weak.lock()) self->complete(id, ec);
  });
  return f;
}

void calibrated_ring::cancel_all() noexcept {
  auto& s = *state_;
  s.gpu.cancel_all();
  auto dropped = std::move(s.submitted);
  s.submitted.clear();
  auto held = std::move(s.held);
  s.held.clear();
  s.stuck = false;
  const auto cancelled = make_error_code(errc::cancelled);
  for (auto& [id, entry] : dropped) {
    s.log[entry.record].finishes = false;
    entry.done.set_error(cancelled);
  }
  for (auto& p : held) p.set_error(cancelled);
}

timeout_verdict calibrated_ring::on_timeout(sim::command& cmd) {
  return cmd.effect.what == sim::fault::kind::hang ? timeout_verdict::hung : timeout_verdict::progressing;
}

bool calibrated_ring::stalled() const { return state_->submitted.empty(); }

std::vector<sim::run_record> calibrated_ring::log() const { return state_->log; }

}  // namespace cosched::virtgpu

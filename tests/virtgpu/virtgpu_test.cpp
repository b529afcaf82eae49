// Real GPU work on virtio-gpu with virgl: the device probe, every command type
// checked pixel by pixel after readback, a three-entity pipeline of 1002 jobs
// through the scheduler, and shutdown with GPU work in flight.
#include "cosched/virtgpu/ring.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cosched/cosched.hpp"
#include "cosched/testing.hpp"
#include "cosched/virtgpu/command.hpp"
#include "cosched/virtgpu/texture.hpp"
#include "drm_fixture.hpp"
#include "virtgpu_fixture.hpp"

using namespace cosched;
using namespace cosched::virtgpu;
using namespace cosched::virtgpu::test;
using cosched::drm::test::contains;
using cosched::drm::test::run_until;
using cosched::drm::test::settle;

namespace {

// Runs one command on the ring and waits for its fence.
void run_and_wait(rig& r, virtgpu::ring& ring, command& c) {
  const fence f = ring.run(c);
  REQUIRE(run_until(r.ctx, [&] { return f.signalled(); }));
  REQUIRE_FALSE(f.error());
}

// Texels of `all` (a width-wide texture) inside `at`, row by row.
std::vector<std::uint32_t> cut(const std::vector<std::uint32_t>& all, std::uint32_t width, region at) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t y = at.y; y < at.y + at.height; ++y)
    for (std::uint32_t x = at.x; x < at.x + at.width; ++x) out.push_back(all[std::size_t{y} * width + x]);
  return out;
}

// How many texels of `all` outside `at` differ from `expected`.
std::size_t outside_differing(const std::vector<std::uint32_t>& all, std::uint32_t width, region at,
                              std::uint32_t expected) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto x = static_cast<std::uint32_t>(i % width);
    const auto y = static_cast<std::uint32_t>(i / width);
    const bool inside = x >= at.x && x < at.x + at.width && y >= at.y && y < at.y + at.height;
    if (!inside && all[i] != expected) ++n;
  }
  return n;
}

// Shuts the scheduler down when the test leaves early (a failed REQUIRE), so
// that the failure is reported instead of the scheduler's destructor
// terminating the process.
template <class Command>
struct shut_down_on_exit {
  scheduler<Command>& sched;
  asio::io_context& ctx;
  ~shut_down_on_exit() {
    if (sched.is_shut_down()) return;
    const fence down = sched.shutdown(std::chrono::nanoseconds(0));
    run_until(ctx, [&] { return down.signalled(); });
  }
};

// A colour whose components are exact multiples of 1/255.
color exact(std::uint32_t r, std::uint32_t g, std::uint32_t b, std::uint32_t a) {
  return {r / 255.0f, g / 255.0f, b / 255.0f, a / 255.0f};
}

// A texel value unique to (n, i), all bytes varying.
std::uint32_t pattern(std::uint32_t n, std::uint32_t i) {
  std::uint32_t v = n * 0x9E3779B1u + i * 0x85EBCA77u + 0x27d4eb2fu;
  v ^= v >> 15;
  return v * 0x2C1B3C6Du;
}

}  // namespace

TEST_CASE(
    "virtgpu::device: the probe finds virgl and names the host renderer, other nodes are refused by name",
    "[virtgpu][device]") {
  COSCHED_VIRTGPU_TEST_DEVICE(dev);
  CHECK(dev.drm().driver() == "virtio_gpu");
  CHECK((dev.info().capset_ids & 0x6) != 0);
  CHECK_FALSE(dev.info().renderer.empty());
  INFO("renderer: " << dev.info().renderer << "; render node " << dev.drm().path());
  CHECK(dev.new_object_handle() != dev.new_object_handle());
  // vgem (renderD129 in the test VM) has no syncobjs.
  try {
    device::open("/dev/dri/renderD129");
    FAIL("vgem was accepted as a virgl device");
  } catch (const std::system_error& e) {
    CHECK_THAT(std::string(e.what()), contains("cosched::virtgpu::device: "));
    CHECK_THAT(std::string(e.what()), contains("/dev/dri/renderD129"));
  }
  try {
    device::open("/dev/dri/renderD200");
    FAIL("a missing node was accepted");
  } catch (const std::system_error& e) {
    CHECK_THAT(std::string(e.what()), contains("no DRM device at /dev/dri/renderD200"));
  }
}

TEST_CASE("virtgpu: clear writes the colour into every texel of the framebuffer's texture",
          "[virtgpu][command]") {
  COSCHED_VIRTGPU_TEST_DEVICE(dev);
  rig r(dev);
  virtgpu::ring ring(r.source, driver(dev), ring_options);
  auto t = texture::create(dev, 64, 32);
  command c(dev);
  const surface s = c.create_surface(t);
  c.set_framebuffer({s}).clear(exact(10, 20, 30, 255)).destroy_surface(s);
  REQUIRE(c.resources().size() == 1);
  run_and_wait(r, ring, c);
  const auto texels = t.read();
  REQUIRE(texels.size() == 64 * 32);
  CHECK(std::count(texels.begin(), texels.end(), texel(10, 20, 30, 255)) == 64 * 32);
}

TEST_CASE("virtgpu: write_region writes exactly its region, also when split over several virgl commands",
          "[virtgpu][command]") {
  COSCHED_VIRTGPU_TEST_DEVICE(dev);
  rig r(dev);
  virtgpu::ring ring(r.source, driver(dev), ring_options);
  const std::uint32_t width = 8192;  // a row of 8192 texels: 7 rows per virgl command
  auto t = texture::create(dev, width, 24);
  command c(dev);
  const surface s = c.create_surface(t);
  c.set_framebuffer({s}).clear(exact(1, 2, 3, 4)).destroy_surface(s);
  const region small{5, 3, 7, 2};
  std::vector<std::uint32_t> small_texels(7 * 2);
  for (std::uint32_t i = 0; i < small_texels.size(); ++i) small_texels[i] = pattern(1, i);
  c.write_region(t, small, small_texels);
  const region rows{0, 8, width, 16};  // 16 rows: split 7 + 7 + 2
  std::vector<std::uint32_t> row_texels(std::size_t{width} * 16);
  for (std::uint32_t i = 0; i < row_texels.size(); ++i) row_texels[i] = pattern(2, i);
  c.write_region(t, rows, row_texels);
  run_and_wait(r, ring, c);
  const auto texels = t.read();
  CHECK(cut(texels, width, small) == small_texels);
  CHECK(cut(texels, width, rows) == row_texels);
  // Between them (rows 0-7 outside the small region), the clear colour.
  CHECK(outside_differing(cut(texels, width, {0, 0, width, 8}), width, small, texel(1, 2, 3, 4)) == 0);
}

TEST_CASE("virtgpu: copy_region copies exactly its region between textures and within one",
          "[virtgpu][command]") {
  COSCHED_VIRTGPU_TEST_DEVICE(dev);
  rig r(dev);
  virtgpu::ring ring(r.source, driver(dev), ring_options);
  auto source = texture::create(dev, 128, 128, texture::backing::host_only);
  auto target = texture::create(dev, 64, 64);
  command c(dev);
  const surface ss = c.create_surface(source);
  const surface ts = c.create_surface(target);
  c.set_framebuffer({ss}).clear(exact(200, 100, 50, 255));
  c.set_framebuffer({ts}).clear(exact(0, 0, 0, 255));
  c.destroy_surface(ss).destroy_surface(ts);
  std::vector<std::uint32_t> marks(4 * 4);
  for (std::uint32_t i = 0; i < marks.size(); ++i) marks[i] = pattern(3, i);
  c.write_region(source, {100, 100, 4, 4}, marks);
  c.copy_region(target, 10, 20, source, {90, 90, 16, 16});  // the marks land at (20, 30)
  c.copy_region(target, 40, 40, target, {20, 30, 4, 4});    // and again, within the target
  REQUIRE(c.resources().size() == 2);
  run_and_wait(r, ring, c);
  const auto texels = target.read();
  CHECK(cut(texels, 64, {20, 30, 4, 4}) == marks);
  CHECK(cut(texels, 64, {40, 40, 4, 4}) == marks);
  const auto copied = cut(texels, 64, {10, 20, 16, 16});
  CHECK(std::count(copied.begin(), copied.end(), texel(200, 100, 50, 255)) == 16 * 16 - 16);
  std::size_t black = 0;
  for (std::uint32_t y = 0; y < 64; ++y)
    for (std::uint32_t x = 0; x < 64; ++x) {
      const bool in_copy = x >= 10 && x < 26 && y >= 20 && y < 36;
      const bool in_second = x >= 40 && x < 44 && y >= 40 && y < 44;
      if (!in_copy && !in_second && texels[y * 64 + x] == texel(0, 0, 0, 255)) ++black;
    }
  CHECK(black == 64 * 64 - 16 * 16 - 16);
}

TEST_CASE("virtgpu: sub contexts keep their own framebuffer state, surfaces are destroyed and made again",
          "[virtgpu][command]") {
  COSCHED_VIRTGPU_TEST_DEVICE(dev);
  rig r(dev);
  virtgpu::ring ring(r.source, driver(dev), ring_options);
  auto a = texture::create(dev, 16, 16);
  auto b = texture::create(dev, 16, 16);
  command first(dev);
  first.create_sub_context(7).set_sub_context(7);
  const surface sa = first.create_surface(a);
  first.set_framebuffer({sa}).clear(exact(255, 0, 0, 255));
  first.set_sub_context(0);
  const surface sb = first.create_surface(b);
  first.set_framebuffer({sb}).clear(exact(0, 255, 0, 255));
  run_and_wait(r, ring, first);
  // Back in sub context 7 its framebuffer (a) is still bound: a second command
  // clears it through a surface bound again, then drops the sub context.
  command second(dev);
  second.set_sub_context(7).set_framebuffer({sa}).clear(exact(0, 0, 255, 255)).destroy_surface(sa);
  second.set_sub_context(0).destroy_sub_context(7).destroy_surface(sb);
  const surface again = second.create_surface(b);
  second.set_framebuffer({again}).clear(exact(9, 9, 9, 9)).destroy_surface(again);
  run_and_wait(r, ring, second);
  const auto ta = a.read();
  const auto tb = b.read();
  CHECK(std::count(ta.begin(), ta.end(), texel(0, 0, 255, 255)) == 256);
  CHECK(std::count(tb.begin(), tb.end(), texel(9, 9, 9, 9)) == 256);
}

TEST_CASE("virtgpu: texture upload and read round-trip the whole texture, in order with submissions",
          "[virtgpu][texture]") {
  COSCHED_VIRTGPU_TEST_DEVICE(dev);
  rig r(dev);
  virtgpu::ring ring(r.source, driver(dev), ring_options);
  auto up = texture::create(dev, 32, 8);
  auto down = texture::create(dev, 32, 8);
  std::vector<std::uint32_t> data(32 * 8);
  for (std::uint32_t i = 0; i < data.size(); ++i) data[i] = pattern(4, i);
  up.upload(data);
  CHECK(up.read() == data);
  command c(dev);
  c.copy_region(down, 0, 0, up, {0, 0, 32, 8});
  run_and_wait(r, ring, c);
  CHECK(down.read() == data);
}

TEST_CASE("virtgpu::command: malformed commands are refused before anything is written",
          "[virtgpu][command]") {
  COSCHED_VIRTGPU_TEST_DEVICE(dev);
  auto t = texture::create(dev, 16, 16);
  command c(dev);
  CHECK_THROWS_AS(c.clear(exact(1, 1, 1, 1)), std::logic_error);
  CHECK_THROWS_AS(c.copy_region(t, 10, 10, t, {0, 0, 8, 8}), std::invalid_argument);  // past the edge
  CHECK_THROWS_AS(c.copy_region(t, 4, 4, t, {0, 0, 8, 8}), std::invalid_argument);    // overlapping
  CHECK_THROWS_AS(c.write_region(t, {0, 0, 4, 4}, std::vector<std::uint32_t>(15)), std::invalid_argument);
  CHECK_THROWS_AS(c.write_region(t, {14, 0, 4, 1}, std::vector<std::uint32_t>(4)), std::invalid_argument);
  CHECK_THROWS_AS(c.set_framebuffer({}), std::invalid_argument);
  const surface s = c.create_surface(t);
  c.set_framebuffer({s});
  CHECK_THROWS_AS(c.clear({2.0f, 0, 0, 1}), std::invalid_argument);
  CHECK_THROWS_AS(texture::create(dev, 0, 4), std::invalid_argument);
  CHECK_THROWS_AS(t.upload(std::vector<std::uint32_t>(3)), std::invalid_argument);
  auto host = texture::create(dev, 4, 4, texture::backing::host_only);
  CHECK_THROWS_AS(host.read(), std::logic_error);
  // Nothing of the refused calls reached the stream: create_surface and set_framebuffer only.
  CHECK(c.dwords().size() == 6 + 4);
}

namespace {

// The scheduler's command in the pipeline test: the GPU command and a probe
// that counts live commands of its job.
struct probed_command {
  command gpu;
  testing::probe alive;
};

// A driver part that wraps another: how a runtime adds its own bookkeeping.
struct probed_driver {
  using command_type = probed_command;
  driver inner;
  // Called after each successful submission, with the number made so far.
  std::function<void(std::uint64_t)> after_submit = {};
  std::error_code submit(probed_command& c, const drm::submission& s) {
    const std::error_code ec = inner.submit(c.gpu, s);
    if (!ec && after_submit) after_submit(inner.submissions());
    return ec;
  }
  const drm::device& drm_device() const noexcept { return inner.drm_device(); }
};

}  // namespace

TEST_CASE(
    "virtgpu: a pipeline of three entities (upload, process, readback), 1002 GPU jobs with priorities and "
    "dependencies, every fence signals once, with nothing of its job alive, and every tile arrives",
    "[virtgpu][scheduler][lifetime]") {
  COSCHED_VIRTGPU_TEST_DEVICE(dev);
  rig r(dev);
  drm::driver_ring<probed_driver> ring(r.source, probed_driver{driver(dev)}, ring_options);
  scheduler<probed_command> sched(r.ctx.get_executor(), ring, {.credit_limit = 8});
  auto uploads = sched.make_entity({.prio = priority::low, .name = "upload"});
  auto process = sched.make_entity({.prio = priority::normal, .name = "process"});
  auto readback = sched.make_entity({.prio = priority::high, .name = "readback"});

  constexpr std::uint32_t frames = 334;  // three jobs each: 1002
  constexpr std::uint32_t tile = 8, columns = 32;
  const std::uint32_t width = tile * columns, height = tile * ((frames + columns - 1) / columns);
  auto input = texture::create(dev, width, height, texture::backing::host_only);
  auto work = texture::create(dev, width, height, texture::backing::host_only);
  auto output = texture::create(dev, width, height);
  auto tile_of = [&](std::uint32_t f) {
    return region{(f % columns) * tile, (f / columns) * tile, tile, tile};
  };

  std::deque<testing::live_counter> frames_alive(3 * frames);
  std::deque<testing::live_counter> commands_alive(3 * frames);
  testing::fence_checker checker;
  std::size_t alive_at_signal = 0;
  auto watch = [&](const fence& f, std::size_t job) {
    checker.watch(f, "job " + std::to_string(job), [&, job] {
      if (frames_alive[job].alive() != 0 || commands_alive[job].alive() != 0) ++alive_at_signal;
    });
  };

  auto upload_job = [&](testing::probe, std::uint32_t f, testing::live_counter& c) -> job<probed_command> {
    std::vector<std::uint32_t> texels(tile * tile);
    for (std::uint32_t i = 0; i < texels.size(); ++i) texels[i] = pattern(f, i);
    command gpu(dev);
    gpu.write_region(input, tile_of(f), texels);
    co_return probed_command{std::move(gpu), testing::probe(c)};
  };
  auto process_job = [&](testing::probe, std::uint32_t f, fence uploaded,
                         testing::live_counter& c) -> job<probed_command> {
    co_await uploaded;
    const region at = tile_of(f);
    command gpu(dev);
    gpu.copy_region(work, at.x, at.y, input, at);
    co_return probed_command{std::move(gpu), testing::probe(c)};
  };
  auto readback_job = [&](testing::probe, std::uint32_t f, fence processed,
                          testing::live_counter& c) -> job<probed_command> {
    co_await processed;
    const region at = tile_of(f);
    command gpu(dev);
    gpu.copy_region(output, at.x, at.y, work, at);
    co_return probed_command{std::move(gpu), testing::probe(c)};
  };

  // Declared after everything the jobs point at, so it goes first.
  shut_down_on_exit<probed_command> guard{sched, r.ctx};
  std::vector<fence> last;
  for (std::uint32_t f = 0; f < frames; ++f) {
    const std::size_t u = 3 * f, p = u + 1, b = u + 2;
    auto up = uploads.push(upload_job(testing::probe(frames_alive[u]), f, commands_alive[u])).finished;
    auto pr = process.push(process_job(testing::probe(frames_alive[p]), f, up, commands_alive[p])).finished;
    auto rb = readback.push(readback_job(testing::probe(frames_alive[b]), f, pr, commands_alive[b])).finished;
    watch(up, u);
    watch(pr, p);
    watch(rb, b);
    last = {up, pr, rb};
  }
  REQUIRE(run_until(
      r.ctx, [&] { return checker.pending() == 0; }, std::chrono::seconds(300)));
  CHECK(checker.watched() == 3 * frames);
  CHECK(checker.signalled_once() == 3 * frames);
  CHECK(checker.all_exactly_once());
  CHECK(alive_at_signal == 0);
  for (const fence& f : last) CHECK_FALSE(f.error());
  CHECK(ring.driver().inner.submissions() == 3 * frames);
  // Fewer registrations than jobs: completions that arrive together share one.
  INFO("registrations " << ring.points().registrations_made() << ", wake-ups " << ring.points().wakeups());
  CHECK(ring.points().registrations_made() <= 3 * frames);

  auto stopped = sched.shutdown();
  REQUIRE(run_until(r.ctx, [&] { return stopped.signalled(); }));
  const auto texels = output.read();
  std::size_t wrong_tiles = 0;
  for (std::uint32_t f = 0; f < frames; ++f) {
    const auto got = cut(texels, width, tile_of(f));
    for (std::uint32_t i = 0; i < got.size(); ++i)
      if (got[i] != pattern(f, i)) {
        ++wrong_tiles;
        break;
      }
  }
  CHECK(wrong_tiles == 0);
}

TEST_CASE("virtgpu: shutdown with GPU work in flight settles every fence, destroys every job and leaks no fd",
          "[virtgpu][scheduler][lifetime]") {
  COSCHED_VIRTGPU_TEST_DEVICE(dev);
  const std::size_t fds_before = open_fds();
  testing::live_counter frames_alive, commands_alive;
  testing::fence_checker checker;
  {
    rig r(dev);
    {
      drm::driver_ring<probed_driver> ring(r.source, probed_driver{driver(dev)}, ring_options);
      scheduler<probed_command> sched(r.ctx.get_executor(), ring, {.credit_limit = 4});
      shut_down_on_exit<probed_command> guard{sched, r.ctx};
      auto queue = sched.make_entity();
      auto a = texture::create(dev, 2048, 2048, texture::backing::host_only);
      auto b = texture::create(dev, 2048, 2048, texture::backing::host_only);
      // Each job copies 16 MiB back and forth eight times: tens of milliseconds.
      auto heavy = [&](testing::probe) -> job<probed_command> {
        command gpu(dev);
        for (int i = 0; i < 4; ++i) {
          gpu.copy_region(b, 0, 0, a, {0, 0, 2048, 2048});
          gpu.copy_region(a, 0, 0, b, {0, 0, 2048, 2048});
        }
        co_return probed_command{std::move(gpu), testing::probe(commands_alive)};
      };
      std::vector<fence> done;
      // Shut down from inside the fourth submission (the credit limit): the
      // scheduler takes the request in the same pass, before the reactor can
      // report that command done, so it is on the GPU as shutdown begins. (A
      // check from outside is not enough: under QEMU's TCG the host may run the
      // work while the guest's submit ioctl waits, and one reactor wake-up may
      // report a command done within the handler that submitted it.) The jobs
      // never submitted fail `shutdown` at once, the commands whose GPU fences
      // are pending are cancelled (bound 0); the first three are done or
      // cancelled, depending on the GPU.
      std::optional<fence> stopped;
      std::size_t in_flight_at_shutdown = 0;
      ring.driver().after_submit = [&](std::uint64_t n) {
        if (n != 4) return;
        in_flight_at_shutdown = ring.in_flight() + 1;  // this one is tracked once submit returns
        stopped = sched.shutdown(std::chrono::nanoseconds(0));
      };
      for (int i = 0; i < 16; ++i) {
        done.push_back(queue.push(heavy(testing::probe(frames_alive))).finished);
        checker.watch(done.back(), "job " + std::to_string(i));
      }
      REQUIRE(run_until(
          r.ctx, [&] { return stopped && stopped->signalled(); }, std::chrono::seconds(120)));
      CHECK(in_flight_at_shutdown >= 1);
      CHECK(checker.pending() == 0);
      CHECK(checker.all_exactly_once());
      CHECK(frames_alive.alive() == 0);
      CHECK(commands_alive.alive() == 0);
      CHECK(ring.in_flight() == 0);
      CHECK(ring.driver().inner.submissions() == 4);  // nothing ran after shutdown began
      const auto shut_down = make_error_code(errc::shutdown);
      for (std::size_t i = 0; i < 3; ++i) CHECK((!done[i].error() || done[i].error() == shut_down));
      for (std::size_t i = 3; i < done.size(); ++i) CHECK(done[i].error() == shut_down);
    }
    // The GPU finishes the abandoned work; the ring's eventfd closes once the
    // reactor's poll has ended.
    settle(r.ctx);
  }
  CHECK(open_fds() == fds_before);
}

// Virtual time: an ordered event map, fired instant by instant.
#include "cosched/sim/virtual_clock.hpp"

#include <stdexcept>

namespace cosched::sim {

virtual_clock::event_id virtual_clock::at(time_us when, phase p, std::function<void()> fn) {
  if (when < now_) throw std::invalid_argument("cosched::sim::virtual_clock: event in the past");
  const event_id id = next_id_++;
  const key k{when, static_cast<std::uint8_t>(p), id};
  events_.emplace(k, std::move(fn));
  keys_.emplace(id, k);
  return id;
}

bool virtual_clock::cancel(event_id id) noexcept {
  auto it = keys_.find(id);
  if (it == keys_.end()) return false;
  events_.erase(it->second);
  keys_.erase(it);
  return true;
}

void virtual_clock::settle(asio::io_context& ctx) {
  for (;;) {
    ctx.restart();
    if (ctx.poll() == 0) return;
  }
}

void virtual_clock::run(asio::io_context& ctx) {
  for (;;) {
    settle(ctx);
    if (events_.empty()) return;
    now_ = std::get<0>(events_.begin()->first);
    // Fire every event of this instant in (phase, order); events that firing
    // adds at this same instant fire too, before the executor runs.
    while (!events_.empty() && std::get<0>(events_.begin()->first) == now_) {
      auto node = events_.extract(events_.begin());
      keys_.erase(std::get<2>(node.key()));
      node.mapped()();
    }
  }
}

}  // namespace cosched::sim

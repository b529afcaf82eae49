// Policy fifo (the default): strict priority, then push order.
#pragma once

#include "cosched/priority.hpp"
#include "engine/queue_entry.hpp"

namespace cosched::detail {

/// The head of the highest-priority entity goes first; between entities of one
/// priority, the head pushed earliest (the run queue breaks every tie by the
/// head's push order). Stateless: any thread, no lifetime to keep.
struct fifo_policy {
  static order_key key(const queue_entry&, priority p) noexcept {
    return {0, static_cast<std::uint64_t>(p), 0};
  }
};

}  // namespace cosched::detail

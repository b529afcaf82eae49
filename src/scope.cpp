// Counting scopes.
#include "cosched/scope.hpp"

#include <algorithm>

namespace cosched {

scope::scope() : id_(new_context()) {}

scope::~scope() {
  std::lock_guard guard(lock_);
  if (!joined_) {
    detail::fatal(active_ ? "cosched::scope destroyed with jobs still active: join() it first"
                          : "cosched::scope destroyed without join(): join() it first");
  }
}

void scope::close() noexcept {
  std::lock_guard guard(lock_);
  closed_ = true;
}

void scope::request_stop() {
  std::vector<detail::core_ref> cores;
  {
    std::lock_guard guard(lock_);
    closed_ = true;
    stop_ = true;
    cores = cores_;
  }
  for (auto& core : cores) core->stop_scope(id_);
}

fence scope::join() {
  std::optional<promise> ready;
  fence result;
  {
    std::lock_guard guard(lock_);
    closed_ = true;
    if (!join_promise_) join_promise_.emplace(fence_point{id_, 1});
    result = join_promise_->get_fence();
    if (active_ == 0 && !joined_) {
      joined_ = true;
      ready = std::move(join_promise_);
      join_promise_.reset();
      cores_.clear();
    }
  }
  if (ready) ready->set_value();
  return result;
}

bool scope::stop_requested() const noexcept {
  std::lock_guard guard(lock_);
  return stop_;
}

std::size_t scope::active() const noexcept {
  std::lock_guard guard(lock_);
  return active_;
}

bool scope::enter(detail::scheduler_core* core) {
  std::lock_guard guard(lock_);
  if (closed_) return false;
  ++active_;
  auto known = std::find_if(cores_.begin(), cores_.end(),
                            [core](const detail::core_ref& r) { return r.get() == core; });
  if (known == cores_.end()) {
    core->add_ref();
    cores_.emplace_back(core);
  }
  return true;
}

void scope::leave() noexcept {
  std::optional<promise> ready;
  std::vector<detail::core_ref> cores;
  {
    std::lock_guard guard(lock_);
    if (--active_ == 0 && join_promise_ && !joined_) {
      joined_ = true;
      ready = std::move(join_promise_);
      join_promise_.reset();
      cores.swap(cores_);
    }
  }
  // The scope may be destroyed as soon as the join fence signals: nothing of it
  // is touched after this line.
  if (ready) ready->set_value();
}

}  // namespace cosched

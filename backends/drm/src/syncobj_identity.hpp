// Internal to the DRM backend: what ties a syncobj object to the fence sources
// waiting on it, so that destroying it through cosched fails their waits.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace cosched::drm::detail {

struct syncobj_identity;

/// Told when a syncobj it waits on is destroyed through cosched.
struct syncobj_listener {
  virtual ~syncobj_listener() = default;
  /// Called once, on the destroying thread, before the handle is destroyed.
  virtual void on_syncobj_destroyed(const syncobj_identity& which) noexcept = 0;
};

/// One per syncobj object (it moves with the handle). Lock order: a listener
/// may take this lock while holding its own; notify_destroyed() never calls a
/// listener while holding it.
struct syncobj_identity {
  /// Adds `listener` unless it is there already.
  void add_listener(const std::shared_ptr<syncobj_listener>& listener) {
    std::lock_guard guard(lock);
    std::erase_if(listeners, [](const auto& weak) { return weak.expired(); });
    for (const auto& weak : listeners)
      if (weak.lock() == listener) return;
    listeners.push_back(listener);
  }

  void notify_destroyed() noexcept {
    std::vector<std::weak_ptr<syncobj_listener>> snapshot;
    {
      std::lock_guard guard(lock);
      snapshot.swap(listeners);
    }
    for (const auto& weak : snapshot)
      if (auto listener = weak.lock()) listener->on_syncobj_destroyed(*this);
  }

  std::mutex lock;
  std::vector<std::weak_ptr<syncobj_listener>> listeners;  // guarded by lock
};

}  // namespace cosched::drm::detail

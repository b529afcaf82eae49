// What the README's virtio-gpu example uses and does not show: the reactor and
// the context its scheduler runs on (compiled by tests/docs).
#pragma once

#include <cosched/cosched.hpp>
#include <cosched/drm.hpp>
#include <cosched/virtgpu/command.hpp>
#include <cosched/virtgpu/device.hpp>
#include <cosched/virtgpu/ring.hpp>
#include <cosched/virtgpu/texture.hpp>

extern cosched::reactor reactor;
extern cosched::uring_context ctx;

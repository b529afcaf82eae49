// What the README's first job example uses and does not show: a command type,
// a GPU to record it with, the ring and the io_context (compiled by tests/docs).
#pragma once

#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <cosched/cosched.hpp>

struct mesh {};
struct draw_cmd {
  int recorded = 0;
};
struct gpu {
  int record(const mesh&) { return 1; }
};
extern asio::io_context io;
extern cosched::ring<draw_cmd>& my_ring;

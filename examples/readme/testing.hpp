// What the README's lifetime-test example uses and does not show: a scheduler's
// entity on a virtual ring, its clock and io_context (compiled by tests/docs).
#pragma once

#include <cassert>

#include <asio/io_context.hpp>

#include <cosched/cosched.hpp>
#include <cosched/testing.hpp>

extern asio::io_context io;
extern cosched::testing::virtual_clock sim_clock;
extern cosched::entity<cosched::sim::command> queue;

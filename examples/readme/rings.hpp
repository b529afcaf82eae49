// What the README's ring examples use and do not show: a command type, rings,
// an executor, a job body and a sync_file (compiled by tests/docs).
#pragma once

#include <chrono>

#include <asio/io_context.hpp>

#include <cosched/cosched.hpp>

using namespace std::chrono_literals;

struct my_command {};
using cmd = my_command;
extern asio::io_context io;
extern cosched::ring<my_command>& my_ring;
extern cosched::ring<my_command>& gfx_ring;
extern cosched::ring<my_command>& compute_ring;
extern cosched::ring<my_command>& copy_ring;
extern int sync_file_fd;
cosched::job<my_command> job_body(cosched::fence ready);

// What a job's body, or its ring running the job's command, threw: the job
// fails, the scheduler logs the exception's what(), and hands it to
// scheduler_options::on_exception.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <string_view>
#include <system_error>

#include "cosched/fence.hpp"

namespace cosched {

/// A job that failed because something threw.
///
/// The job fails with `error`: a std::system_error's code, ENOMEM for
/// std::bad_alloc, errc::exception for anything else. Before its finished fence
/// signals, the scheduler logs one line at error level naming the entity, the
/// point and what(), and calls scheduler_options::on_exception if set.
///
/// @par Lifetime
/// The string views and the exception_ptr are valid during the call only
/// (copy what you keep).
struct job_exception {
  enum class origin : std::uint8_t {
    body,  ///< the job's coroutine body threw
    ring,  ///< the ring's run() or replay() threw for the job's command
  };
  origin from = origin::body;
  std::string_view entity;  ///< the entity's name (empty if it has none)
  fence_point point;        ///< the job's finished point: (its entity's context, seqno)
  std::error_code error;    ///< what the job fails with
  std::string_view what;    ///< the exception's what(), or a note that it is not a std::exception
  std::exception_ptr exception;
};

/// Called on the scheduler's executor, once per job_exception. What it throws
/// is logged and dropped.
using job_exception_handler = std::function<void(const job_exception&)>;

}  // namespace cosched

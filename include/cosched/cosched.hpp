// Everything of cosched's public API in one include: the scheduler, entities,
// jobs, fences and their combinators, scopes, pause, the reactor and
// uring_context that complete hardware fences, timers and the logger.
#pragma once

#include "cosched/combinators.hpp"
#include "cosched/entity.hpp"
#include "cosched/entity_options.hpp"
#include "cosched/error.hpp"
#include "cosched/fence.hpp"
#include "cosched/job.hpp"
#include "cosched/job_exception.hpp"
#include "cosched/log.hpp"
#include "cosched/pause.hpp"
#include "cosched/priority.hpp"
#include "cosched/reactor.hpp"
#include "cosched/ring.hpp"
#include "cosched/scheduler.hpp"
#include "cosched/scheduler_options.hpp"
#include "cosched/scope.hpp"
#include "cosched/timer.hpp"
#include "cosched/uring_context.hpp"
#include "cosched/version.hpp"

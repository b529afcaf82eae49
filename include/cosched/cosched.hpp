// Everything of cosched's core API in one include.
#pragma once

#include "cosched/combinators.hpp"
#include "cosched/entity.hpp"
#include "cosched/error.hpp"
#include "cosched/fence.hpp"
#include "cosched/job.hpp"
#include "cosched/priority.hpp"
#include "cosched/ring.hpp"
#include "cosched/scheduler.hpp"
#include "cosched/scope.hpp"

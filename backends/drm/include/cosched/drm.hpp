// Everything of the DRM syncobj backend in one include (target cosched::drm).
#pragma once

#include "cosched/drm/device.hpp"
#include "cosched/drm/fence_source.hpp"
#include "cosched/drm/sync_file.hpp"
#include "cosched/drm/syncobj.hpp"
#include "cosched/drm/unique_fd.hpp"

// Captures cosched's log for one test, then puts the tests' null sink back.
#pragma once

#include <memory>
#include <string>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "cosched/log.hpp"

namespace cosched::testing {

struct captured_log {
  captured_log() : sink(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64)) {
    auto logger = std::make_shared<spdlog::logger>("cosched-test", sink);
    logger->set_level(spdlog::level::debug);
    logger->set_pattern("%v");
    set_logger(std::move(logger));
  }
  captured_log(const captured_log&) = delete;
  captured_log& operator=(const captured_log&) = delete;
  ~captured_log() {
    set_logger(
        std::make_shared<spdlog::logger>("cosched-test", std::make_shared<spdlog::sinks::null_sink_mt>()));
  }
  /// Every line logged so far (the last 64), each ending in a newline.
  std::string text() const {
    std::string all;
    for (const auto& line : sink->last_formatted()) all += line;
    return all;
  }
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
};

}  // namespace cosched::testing

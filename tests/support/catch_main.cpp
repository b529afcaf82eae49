// The one Catch2 main of every test executable; cosched logs go to a null sink.
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "cosched/log.hpp"

int main(int argc, char* argv[]) {
  cosched::set_logger(
      std::make_shared<spdlog::logger>("cosched-test", std::make_shared<spdlog::sinks::null_sink_mt>()));
  return Catch::Session().run(argc, argv);
}

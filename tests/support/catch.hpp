// Catch2 v2/v3 compatibility: tests include this instead of a Catch2 header.
#pragma once
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

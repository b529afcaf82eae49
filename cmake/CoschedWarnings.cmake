# Warnings for project code only (third-party headers are included as SYSTEM).
function(cosched_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(COSCHED_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# cosched_gcc_restrict_false_positive(<source>...): GCC 12 at -O3 (CMake's
# Release) reports -Wrestrict inside libstdc++'s char_traits.h, a memcpy of
# 2^63 bytes "overlapping at offset -3", for "literal" + std::string, once
# operator+ and string::insert are inlined: a false positive (GCC bug 105329).
# Off for the files named, with GCC 12 or later only. Source file properties
# belong to a directory: a file that two directories compile is named in both.
function(cosched_gcc_restrict_false_positive)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12)
    set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_OPTIONS -Wno-restrict)
  endif()
endfunction()

# Script mode (cmake -P), one step of the package check per call, by WAY:
#   install     installs BUILD_DIR into PREFIX (emptied first)
#   cmake       configures the consumer (CONSUMER_SOURCE) against PREFIX with
#               find_package(cosched) and the compiler CXX, builds it in
#               CONSUMER_BUILD and runs it
#   pkg-config  checks every .pc file installed in PREFIX/LIBDIR/pkgconfig, then
#               compiles the consumer's main.cpp with CXX and what
#               `pkg-config --cflags --libs cosched-sim` gives, no CMake, and runs it
# CXX_FLAGS and LINKER_FLAGS go to the consumer's compiler (a sanitizer build's).
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(result)
    message(FATAL_ERROR "${what} failed: ${result}")
  endif()
endfunction()

if(WAY STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  run("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${PREFIX}")
  return()
endif()

file(REMOVE_RECURSE "${CONSUMER_BUILD}")
if(WAY STREQUAL "cmake")
  run("configuring the consumer" ${CMAKE_COMMAND} -S "${CONSUMER_SOURCE}" -B "${CONSUMER_BUILD}" -G "${GENERATOR}"
      "-DCMAKE_PREFIX_PATH=${PREFIX}" "-DCMAKE_CXX_COMPILER=${CXX}"
      "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}")
  run("building the consumer" ${CMAKE_COMMAND} --build "${CONSUMER_BUILD}")
elseif(WAY STREQUAL "pkg-config")
  if(IS_ABSOLUTE "${LIBDIR}")
    set(pc_dir "${LIBDIR}/pkgconfig")
  else()
    set(pc_dir "${PREFIX}/${LIBDIR}/pkgconfig")
  endif()
  # Searched before the system's directories, which still provide spdlog and liburing.
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  file(GLOB pc_files "${pc_dir}/*.pc")
  if(NOT pc_files)
    message(FATAL_ERROR "no .pc file in ${pc_dir}")
  endif()
  foreach(pc_file IN LISTS pc_files)
    get_filename_component(module "${pc_file}" NAME_WLE)
    run("pkg-config --validate ${module}" "${PKG_CONFIG}" --validate "${module}")
    run("pkg-config --cflags --libs ${module}" "${PKG_CONFIG}" --print-errors --cflags --libs "${module}")
  endforeach()
  # Compiled and linked in two steps, as a build system would: the linker flags
  # (a sanitizer build's -fsanitize=...) must not come after the compiler flags
  # on a compile line, where they would turn back on what those turned off
  # (clang 14's -fsanitize=function breaks coroutine code: "Cannot represent a
  # difference across sections").
  execute_process(COMMAND "${PKG_CONFIG}" --cflags cosched-sim
                  OUTPUT_VARIABLE pc_cflags OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND "${PKG_CONFIG}" --libs cosched-sim
                  OUTPUT_VARIABLE pc_libs OUTPUT_STRIP_TRAILING_WHITESPACE)
  separate_arguments(pc_cflags UNIX_COMMAND "${pc_cflags}")
  separate_arguments(pc_libs UNIX_COMMAND "${pc_libs}")
  separate_arguments(cxx_flags UNIX_COMMAND "${CXX_FLAGS}")
  separate_arguments(linker_flags UNIX_COMMAND "${LINKER_FLAGS}")
  file(MAKE_DIRECTORY "${CONSUMER_BUILD}")
  set(compile "${CXX}" -std=c++20 ${cxx_flags} ${pc_cflags} -c "${CONSUMER_SOURCE}/main.cpp"
      -o "${CONSUMER_BUILD}/main.o")
  set(link "${CXX}" ${cxx_flags} ${linker_flags} "${CONSUMER_BUILD}/main.o" ${pc_libs}
      -o "${CONSUMER_BUILD}/consumer")
  foreach(step IN ITEMS compile link)
    list(JOIN ${step} " " shown)
    message(STATUS "${shown}")
    run("${step} step of the consumer" ${${step}})
  endforeach()
else()
  message(FATAL_ERROR "WAY must be install, cmake or pkg-config, not '${WAY}'")
endif()
run("the consumer" "${CONSUMER_BUILD}/consumer")

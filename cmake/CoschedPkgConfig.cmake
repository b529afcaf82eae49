# pkg-config files for the installed libraries, one per CMake target
# (cosched.pc for cosched::cosched, cosched-sim.pc for cosched::sim, ...),
# installed beside the CMake package in <libdir>/pkgconfig.
#
# The files are relocatable: paths are relative to ${pcfiledir}, so they stay
# right when `cmake --install --prefix` differs from CMAKE_INSTALL_PREFIX.
# Link dependencies that the libraries keep private (spdlog, liburing) are
# needed by every consumer of a static library, so for a static library they
# are in Requires; for a shared one in Requires.private. Cflags carry the
# target's interface definitions; the language level is the consumer's to
# choose (cosched needs C++20).

if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_cosched_pc_prefix "${CMAKE_INSTALL_PREFIX}")
  set(_cosched_pc_libdir "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _cosched_pc_up "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
  string(REGEX REPLACE "/$" "" _cosched_pc_up "${_cosched_pc_up}")
  set(_cosched_pc_prefix "\${pcfiledir}/${_cosched_pc_up}")
  set(_cosched_pc_libdir "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(_cosched_pc_includedir "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(_cosched_pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# cosched_pkg_config(<target> NAME <name> DESCRIPTION <text>
#                    [REQUIRES <modules>...] [LIBS <flags>...]
#                    [LINK_REQUIRES <modules>...] [CFLAGS <flags>...])
# REQUIRES, LIBS: what the target's headers use (always Requires, Libs).
# LINK_REQUIRES: what only the target's own code uses, needed at link time
# when the target is a static library.
function(cosched_pkg_config target)
  cmake_parse_arguments(ARG "" "NAME;DESCRIPTION" "REQUIRES;LIBS;LINK_REQUIRES;CFLAGS" ${ARGN})
  get_target_property(type ${target} TYPE)
  get_target_property(output ${target} OUTPUT_NAME)
  if(NOT output)
    set(output ${target})
  endif()
  set(requires ${ARG_REQUIRES})
  list(JOIN ARG_LIBS " " libs)
  set(libs "-L\${libdir} -l${output} ${libs}")
  set(requires_private "")
  if(type STREQUAL "STATIC_LIBRARY")
    list(APPEND requires ${ARG_LINK_REQUIRES})
  else()
    set(requires_private ${ARG_LINK_REQUIRES})
  endif()
  list(JOIN requires ", " requires)
  list(JOIN requires_private ", " requires_private)
  list(JOIN ARG_CFLAGS " " cflags)
  string(STRIP "${libs}" libs)

  set(text "prefix=${_cosched_pc_prefix}\nlibdir=${_cosched_pc_libdir}\nincludedir=${_cosched_pc_includedir}\n\n")
  string(APPEND text "Name: ${ARG_NAME}\nDescription: ${ARG_DESCRIPTION}\nVersion: ${PROJECT_VERSION}\n")
  if(requires)
    string(APPEND text "Requires: ${requires}\n")
  endif()
  if(requires_private)
    string(APPEND text "Requires.private: ${requires_private}\n")
  endif()
  string(APPEND text "Libs: ${libs}\n")
  string(STRIP "-I\${includedir} ${cflags}" cflags)
  string(APPEND text "Cflags: ${cflags}\n")
  file(WRITE ${PROJECT_BINARY_DIR}/pkgconfig/${ARG_NAME}.pc "${text}")
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/${ARG_NAME}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()

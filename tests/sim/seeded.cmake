# The seeded simulation test: random graphs through the real scheduler against an
# independent reference model (included from tests/sim/CMakeLists.txt).
if(TARGET cosched_submit_lib)
  cosched_test(seeded_tests seeded_test.cpp reference_model.cpp random_graph.cpp LIBS cosched_submit_lib)
  target_compile_definitions(seeded_tests PRIVATE COSCHED_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  cosched_gcc_restrict_false_positive(random_graph.cpp)
endif()

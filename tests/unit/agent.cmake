# Unit tests of the agent.
fr_unit_test(test_engine_output SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_engine_output.c LIBS fr_agent_core)
fr_unit_test(test_unit_run SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_unit_run.c LIBS fr_agent_core)
fr_unit_test(test_engine_probe SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_engine_probe.c LIBS fr_agent_core)
add_dependencies(test_engine_probe flashrack-sim-restore)

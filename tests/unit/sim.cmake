# Unit tests of the rack simulator's model.
fr_unit_test(test_rack SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_rack.c LIBS fr_sim_core)
target_compile_definitions(test_rack PRIVATE FR_CONFIG_DIR="${CMAKE_SOURCE_DIR}/config")
fr_unit_test(test_simfate SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_simfate.c LIBS fr_sim_core)
fr_unit_test(test_world SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_world.c LIBS fr_sim_core)
fr_unit_test(test_muxd_wire SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_muxd_wire.c LIBS fr_sim_core)

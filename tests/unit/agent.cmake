# Unit tests of the agent.
fr_unit_test(test_engine_output SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_engine_output.c LIBS fr_agent_core)
fr_unit_test(test_unit_run SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_unit_run.c LIBS fr_agent_core)
fr_unit_test(test_engine_probe SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_engine_probe.c LIBS fr_agent_core)
add_dependencies(test_engine_probe flashrack-sim-restore)
fr_unit_test(test_irecv_serial SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_irecv_serial.c LIBS fr_agent_core)
fr_unit_test(test_usb_topology SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_usb_topology.c LIBS fr_agent_core)
fr_unit_test(test_irecv_source SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_irecv_source.c LIBS fr_agent_core)
fr_unit_test(test_seams_usb SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_seams_usb.c LIBS fr_agent_core)

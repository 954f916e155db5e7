# Unit tests of the controller's store (real SQLite files in a temp dir).
fr_unit_test(test_store SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_store.c LIBS fr_controller_core)
fr_unit_test(test_mirror_range SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_mirror_range.c LIBS fr_controller_core)

# Unit tests of the CLI's rendering (pure functions over sample documents).
fr_unit_test(test_cli_render SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_cli_render.c LIBS fr_cli_core)
fr_unit_test(test_cli_jscan SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_cli_jscan.c LIBS fr_cli_core)
fr_unit_test(test_cli_listing SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_cli_listing.c LIBS fr_cli_core)

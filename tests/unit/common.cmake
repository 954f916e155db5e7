# Unit tests of common/.
fr_unit_test(test_wire SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_wire.c LIBS fr_common)
fr_unit_test(test_config SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_config.c LIBS fr_common)
fr_unit_test(test_types SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_types.c LIBS fr_common)
fr_unit_test(test_zsock SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_zsock.c LIBS fr_common TIMEOUT 120)
fr_unit_test(test_linebuf SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_linebuf.c LIBS fr_common)
fr_unit_test(test_ipsw SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_ipsw.c LIBS fr_ipsw fr_common)
fr_unit_test(test_tss SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_tss.c LIBS fr_tss PkgConfig::MHD)
fr_unit_test(test_catalog SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_catalog.c LIBS fr_catalog)

# Unit tests of the remediation policy (controller/policy.c, pure functions).
fr_unit_test(test_policy SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_policy.c
             ${CMAKE_SOURCE_DIR}/controller/policy.c LIBS fr_common)
target_include_directories(test_policy PRIVATE ${CMAKE_SOURCE_DIR}/controller)

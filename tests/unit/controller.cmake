# Unit tests of the controller's store (real SQLite files in a temp dir).
fr_unit_test(test_store SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_store.c LIBS fr_controller_core)
# The WAL's checkpoints on libuv's pool, a second connection to a real file.
fr_unit_test(test_checkpoint SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_checkpoint.c LIBS fr_controller_core)
fr_unit_test(test_mirror_range SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_mirror_range.c LIBS fr_controller_core)
fr_unit_test(test_page SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_page.c LIBS fr_controller_core)
fr_unit_test(test_page_rack SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_page_rack.c LIBS fr_controller_core)

# The controller built with FR_STORE_FAULTS (the Nth SQLite call of the store fails) for
# the failure-injection sweep; flashrackd itself never has it.
get_target_property(FR_CONTROLLER_SOURCES fr_controller_core SOURCES)
list(TRANSFORM FR_CONTROLLER_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/controller/)
add_library(fr_controller_faults STATIC ${FR_CONTROLLER_SOURCES})
target_compile_definitions(fr_controller_faults PUBLIC FR_STORE_FAULTS)
target_include_directories(fr_controller_faults PUBLIC ${CMAKE_SOURCE_DIR}/controller)
target_link_libraries(fr_controller_faults PUBLIC $<TARGET_PROPERTY:fr_controller_core,LINK_LIBRARIES>)
fr_unit_test(test_store_faults SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_store_faults.c
             LIBS fr_controller_faults TIMEOUT 240)
# The scheduler's passes on a real store and inproc ZeroMQ, a fault at each SQLite call.
fr_unit_test(test_sched SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_sched.c LIBS fr_controller_faults)
fr_unit_test(test_jtext SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_jtext.c LIBS fr_controller_core)
# fr_controller_faults: a records' batch whose begin fails inside a turn
fr_unit_test(test_records SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_records.c LIBS fr_controller_faults)
fr_unit_test(test_loop_probe SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_loop_probe.c LIBS fr_controller_core)
# The allowlists as loaded: agents found by id among hundreds, operators kept apart.
fr_unit_test(test_zap SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_zap.c LIBS fr_controller_core)

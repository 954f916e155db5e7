# protobuf-c's runtime built from its own source for the libFuzzer build only: compiled with
# the fuzzer's instrumentation, its decoder's branches count as coverage. The source is
# Debian's package of the version this host links, fetched by tests/fuzz/protobuf-c-source.sh
# (bench/fuzz_bench.sh runs it) and named by -DFR_PROTOBUF_C_SRC=DIR. Every other build
# links Debian's shared libprotobuf-c (proto/CMakeLists.txt).
if(NOT EXISTS "${FR_PROTOBUF_C_SRC}/protobuf-c/protobuf-c.c")
  message(FATAL_ERROR "FR_FUZZ compiles protobuf-c's runtime in: -DFR_PROTOBUF_C_SRC=DIR must "
    "name its source tree (tests/fuzz/protobuf-c-source.sh DIR fetches it; got "
    "'${FR_PROTOBUF_C_SRC}'), or -DFR_FUZZ_SYSTEM_PROTOBUF_C=ON links the system library")
endif()
add_library(fr_protobuf_c_fuzz STATIC ${FR_PROTOBUF_C_SRC}/protobuf-c/protobuf-c.c)
# BEFORE: the generated code's <protobuf-c/protobuf-c.h> must be this tree's, not /usr/include's.
target_include_directories(fr_protobuf_c_fuzz BEFORE PUBLIC ${FR_PROTOBUF_C_SRC})
# Not our code to lint. Two UBSan checks are off, each for one function
# (protobuf-c-ubsan-ignore.txt), for constructs that are benign where protobuf-c uses them;
# the rest of UBSan and ASan stay on:
# - shift-base in parse_tag_and_wiretype: a tag's fifth byte, promoted to int, is shifted
#   left by 25, past an int's sign bit; the value is stored into a uint32_t, as meant.
# - pointer-overflow in parse_packed_repeated_member: "array + 0" on a repeated field's
#   still-NULL array, when a packed repeated field arrives with an empty payload (no element
#   counted, so none allocated). fuzz_wire found it within 90,000 runs; the input is
#   tests/fuzz/corpus/wire/crash-625980fd.... Nothing is read or written through the
#   pointer; upstream v1.5.2 still has the same line.
set_source_files_properties(${FR_PROTOBUF_C_SRC}/protobuf-c/protobuf-c.c PROPERTIES COMPILE_OPTIONS
  "-w;-fsanitize-ignorelist=${CMAKE_CURRENT_LIST_DIR}/protobuf-c-ubsan-ignore.txt")

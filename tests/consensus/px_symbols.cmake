# Fails if the qfs_px archive needs any external symbol beyond memory and string helpers: no I/O,
# clock, randomness, threads or sockets can hide in the core, whatever its headers say.
execute_process(COMMAND ${NM} -u ${LIB} OUTPUT_VARIABLE out RESULT_VARIABLE rv)
if(NOT rv EQUAL 0)
  message(FATAL_ERROR "nm failed on ${LIB}")
endif()
string(REGEX MATCHALL "U [A-Za-z0-9_@.]+" syms "${out}")
set(allowed malloc calloc realloc free memcpy memmove memset memcmp qsort
    __cpu_model __cpu_indicator_init __popcountdi2 _GLOBAL_OFFSET_TABLE_
    __stack_chk_fail __memcpy_chk __memset_chk __memmove_chk)
set(bad "")
set(n 0)
foreach(s ${syms})
  string(REGEX REPLACE "^U " "" s "${s}")
  string(REGEX REPLACE "@.*" "" s "${s}")
  math(EXPR n "${n} + 1")
  if(s MATCHES "^px_" OR s MATCHES "^__(asan|ubsan|sanitizer)" OR s MATCHES "^__odr_asan")
    continue() # our own, and the sanitizers' instrumentation
  endif()
  list(FIND allowed "${s}" i)
  if(i EQUAL -1)
    string(APPEND bad " ${s}")
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "qfs_px needs symbols outside the pure allowlist:${bad}")
endif()
message(STATUS "qfs_px: ${n} undefined symbol references, all memory/string helpers or its own")

# Fails if a px_ source of the consensus core includes an I/O, thread, clock or socket header, or
# calls libc randomness or clocks: the core is a pure state machine (time and randomness are inputs).
file(GLOB srcs ${PX_DIR}/px_*.c ${PX_DIR}/px_*.h)
if(NOT srcs)
  message(FATAL_ERROR "no px_ sources found in ${PX_DIR}")
endif()
set(bad "")
foreach(f ${srcs})
  file(READ ${f} text)
  foreach(pat
      "#[ \t]*include[ \t]*[<\"](uv|lmdb|pthread|threads|time|unistd|fcntl|poll|signal)\\.h[>\"]"
      "#[ \t]*include[ \t]*[<\"]sys/[a-z_]+\\.h[>\"]"
      "#[ \t]*include[ \t]*[<\"](netinet|arpa)/"
      "#[ \t]*include[ \t]*[<\"](stdio)\\.h[>\"]"
      "[^a-z_](rand|srand|random|srandom|drand48|rand_r|arc4random|getrandom)[ \t]*\\("
      "[^a-z_](clock_gettime|gettimeofday|time|clock|sleep|usleep|nanosleep)[ \t]*\\("
      "[^a-z_](fopen|open|read|write|send|recv|socket|printf|fprintf)[ \t]*\\(")
    string(REGEX MATCH "${pat}" hit "${text}")
    if(hit)
      string(APPEND bad "${f}: forbidden: '${hit}'\n")
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "the px core is not pure:\n${bad}")
endif()
list(LENGTH srcs nsrc)
message(STATUS "px core is pure (${nsrc} files checked)")

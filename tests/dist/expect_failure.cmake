# Runs COMMAND (a list), which must fail: exit non-zero and print EXPECT
# (a regular expression) on stdout or stderr. Used by the dist_rank_* tests.
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 50)
message("${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "${NAME}: the job exited 0; every rank should have failed")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT}")
  message(FATAL_ERROR "${NAME}: exit ${rc}, but no message matching '${EXPECT}'")
endif()
message("${NAME}: the job failed as it should (exit ${rc})")

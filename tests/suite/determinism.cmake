# Determinism check (issue 4, SPEC §2): the suite run twice with the same
# seed gives byte-identical JSON reports, whatever --jobs is (the second run
# uses 2 threads).  --no-wall-times: wall_ms keys are the reports' only
# wall-clock values.  Also run by tests/reports against the fake engine.
#   cmake -DHX=path/to/hp-harness -DSRC=source-dir -DOUT=scratch-dir -P determinism.cmake
foreach(v HX SRC OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "determinism.cmake: -D${v}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})

function(run_suite json jobs)
  execute_process(COMMAND ${HX} run scenarios/ --seed 20261125 --jobs ${jobs} --no-reports
                          --no-wall-times --json ${json}
                  WORKING_DIRECTORY ${SRC} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  # 0 passed, 1 some failed: both produce a full report, which is what is
  # compared here (suite.run judges pass/fail).  2 and 3 mean no report.
  if(NOT (rc EQUAL 0 OR rc EQUAL 1))
    message(FATAL_ERROR "hp-harness exited ${rc}\n${out}\n${err}")
  endif()
endfunction()

run_suite(${OUT}/first.json 1)
run_suite(${OUT}/second.json 2)
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/first.json ${OUT}/second.json
                RESULT_VARIABLE same)
if(NOT same EQUAL 0)
  message(FATAL_ERROR "same seed, different JSON reports: diff ${OUT}/first.json "
                      "${OUT}/second.json")
endif()
file(SIZE ${OUT}/first.json size)
message(STATUS "determinism: two runs with seed 20261125 gave identical reports (${size} bytes)")

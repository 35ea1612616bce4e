# replay.cmake -DBIN=target -DDIRS="dir1|dir2": run a fuzz target once over
# every file of the directories that exist (seed corpus, regressions).
# libFuzzer given files (not directories) runs each once and exits non-zero
# on the first crash, naming it.
string(REPLACE "|" ";" dirs "${DIRS}")
set(files)
foreach(d ${dirs})
  if(IS_DIRECTORY ${d})
    file(GLOB_RECURSE f LIST_DIRECTORIES false ${d}/*)
    list(FILTER f EXCLUDE REGEX "(README\\.md|\\.gitkeep)$")
    list(APPEND files ${f})
  endif()
endforeach()
list(LENGTH files n)
if(n EQUAL 0)
  message(FATAL_ERROR "no inputs in ${DIRS}")
endif()
list(SORT files)
execute_process(COMMAND ${BIN} -runs=1 ${files} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BIN} failed on an input (exit ${rc})")
endif()
message(STATUS "${n} inputs replayed")

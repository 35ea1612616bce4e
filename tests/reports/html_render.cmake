# The HTML report really renders: a headless browser loads a report of the
# fixture scenarios and the DOM it ends with must hold the rendered
# timelines of the failed scenarios (open at load) and the failure anchor.
# A JavaScript error anywhere stops the rendering and fails this.
#   cmake -DHX=hx-fake -DBROWSER=chromium -DSRC=fixtures -DOUT=dir -P html_render.cmake
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${HX} run scenarios/ --no-reports --html ${OUT}/report.html
                WORKING_DIRECTORY ${SRC} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 1)   # the fixtures hold one failing scenario
  message(FATAL_ERROR "hx-fake exited ${rc}")
endif()
execute_process(COMMAND ${BROWSER} --headless --no-sandbox --disable-gpu
                        --disable-background-networking --disable-component-update
                        --disable-sync --no-first-run --disable-quic
                        --user-data-dir=${OUT}/profile --dump-dom file://${OUT}/report.html
                RESULT_VARIABLE rc OUTPUT_VARIABLE dom ERROR_QUIET TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BROWSER} exited ${rc}")
endif()
# ... and each scenario's step times table (virtual and wall time per step).
foreach(want "data-done=\"1\"" "id=\"f-0\"" "<svg class=\"t\"" "1 passed</span>"
        "<summary>step times (virtual, wall)</summary>" " ms</td><td class=\"stx\">")
  string(FIND "${dom}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "rendered page lacks ${want}: the report's script did not run through")
  endif()
endforeach()
message(STATUS "report.html rendered in ${BROWSER}")

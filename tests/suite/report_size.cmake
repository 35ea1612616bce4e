# The suite's reports stay small (issue 12 §2): with the default compact
# trace, the JSON and HTML reports of the whole suite are under 1 MB each
# (a full trace, --trace full, is about 9 MB).  Reads the reports suite.run
# wrote.   cmake -DDIR=reports-dir -P report_size.cmake
if(NOT DEFINED DIR)
  message(FATAL_ERROR "report_size.cmake: -DDIR=... is required")
endif()
set(limit 1000000)
foreach(f report.json report.html)
  if(NOT EXISTS ${DIR}/${f})
    message(FATAL_ERROR "${DIR}/${f} is missing (suite.run writes it)")
  endif()
  file(SIZE ${DIR}/${f} size)
  if(size GREATER_EQUAL limit)
    message(FATAL_ERROR "${DIR}/${f} is ${size} bytes, over the ${limit}-byte budget of a "
                        "compact report (see reports/README.md)")
  endif()
  message(STATUS "${f}: ${size} bytes (budget ${limit})")
endforeach()

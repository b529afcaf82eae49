# Fails unless `readelf -n` lists every probe of PROBES (provider cosched) in
# the .note.stapsdt notes of each file of FILES (a static library lists them
# per object; a program, once).
foreach(file IN LISTS FILES)
  execute_process(COMMAND ${READELF} -n ${file} OUTPUT_VARIABLE notes RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${READELF} -n ${file} failed (${rc})")
  endif()
  set(missing "")
  foreach(probe IN LISTS PROBES)
    if(NOT notes MATCHES "Provider: cosched\n[ \t]*Name: ${probe}\n")
      list(APPEND missing ${probe})
    endif()
  endforeach()
  if(missing)
    message(FATAL_ERROR "${file}: no .note.stapsdt note for cosched:${missing}")
  endif()
  message(STATUS "${file}: every probe listed")
endforeach()

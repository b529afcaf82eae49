# Warnings for project code only (third-party headers are included as SYSTEM).
function(cosched_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(COSCHED_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

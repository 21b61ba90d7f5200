# cmake -DPREFIX=<install prefix> -P check_relocatable.cmake
# Fails when the installed package names a library by this machine's
# absolute path (HDF5's were): such a package breaks on any other machine.
file(GLOB_RECURSE targets "${PREFIX}/*/maasTargets*.cmake")
if(NOT targets)
  message(FATAL_ERROR "no maasTargets*.cmake under ${PREFIX}")
endif()
foreach(f ${targets})
  file(READ "${f}" text)
  string(REPLACE "\${_IMPORT_PREFIX}/" "" text "${text}")  # the package's own files, relative
  string(REGEX MATCHALL "/[^;\" <>]*/lib[A-Za-z0-9_+-]+\\.(so|a)[.0-9]*" paths "${text}")
  if(paths)
    message(FATAL_ERROR "${f} links by absolute path: ${paths}")
  endif()
endforeach()
message(STATUS "relocatable: no library paths in ${targets}")

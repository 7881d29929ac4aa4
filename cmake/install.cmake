# `cmake --install build --prefix P`: headers, libd2v.so, the CLIs, the converter, and the files that
# let a consumer find it all: find_package(d2v CONFIG) -> d2v::d2v, and pkg-config d2v.
# The shared library is what is installed: a consumer then links one library and needs none of our
# -dev packages (libsndfile, soxr, oneDNN, PCRE2, OpenMP stay private to libd2v.so).
if(NOT D2V_SHARED)
  return()  # a static libd2v is built only to be linked into something else (the Python module)
endif()
include(CMakePackageConfigHelpers)

install(TARGETS d2v_lib EXPORT d2vTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/d2v DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(D2V_CLIS d2v-audio d2v-text d2v-vision d2v-bench)
set_target_properties(${D2V_CLIS} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
install(TARGETS ${D2V_CLIS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The converter (Python, needs numpy + gguf: share/d2v/requirements.txt) behind a d2v-convert command.
install(FILES ${D2V_CONVERTER_FILES} ${PROJECT_SOURCE_DIR}/weights_tools/requirements.txt DESTINATION ${CMAKE_INSTALL_DATADIR}/d2v)
file(RELATIVE_PATH D2V_BIN_TO_SHARE ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_DATADIR})
configure_file(${CMAKE_CURRENT_LIST_DIR}/d2v-convert.in ${PROJECT_BINARY_DIR}/d2v-convert @ONLY)
install(PROGRAMS ${PROJECT_BINARY_DIR}/d2v-convert DESTINATION ${CMAKE_INSTALL_BINDIR})

set(D2V_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/d2v)
install(EXPORT d2vTargets NAMESPACE d2v:: DESTINATION ${D2V_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/d2vConfig.cmake.in ${PROJECT_BINARY_DIR}/d2vConfig.cmake
                              INSTALL_DESTINATION ${D2V_CMAKE_DIR})
# 0.x: a new minor version may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/d2vConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/d2vConfig.cmake ${PROJECT_BINARY_DIR}/d2vConfigVersion.cmake DESTINATION ${D2V_CMAKE_DIR})

configure_file(${CMAKE_CURRENT_LIST_DIR}/d2v.pc.in ${PROJECT_BINARY_DIR}/d2v.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/d2v.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

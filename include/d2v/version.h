// The library's version: the one place it is written (CMake's project() and pyproject.toml read it
// from here).
#pragma once

#define D2V_VERSION_MAJOR 0
#define D2V_VERSION_MINOR 2
#define D2V_VERSION_PATCH 0
#define D2V_VERSION_STRING "0.2.0"

# Locate ONNX Runtime's C API header (onnxruntime_c_api.h); sets ORT_INCLUDE_DIR.
#
# Order: ONNXRUNTIME_INCLUDE_DIR, ONNXRUNTIME_ROOT (CMake variables or environment variables),
# the system (Debian/Ubuntu libonnxruntime-dev, Homebrew, conda), then, on Debian-like systems,
# Debian's libonnxruntime-dev fetched with apt-get download into a user cache (headers only;
# nothing is installed). Only the C API is used, and it is loaded at run time with dlopen, so
# headers of any version >= INFERSPEED_ORT_API_VERSION work with any newer runtime.

set(_ort_header onnxruntime_c_api.h)
set(_ort_suffixes onnxruntime onnxruntime/core/session include include/onnxruntime
                  include/onnxruntime/core/session)

foreach(_var ONNXRUNTIME_INCLUDE_DIR ONNXRUNTIME_ROOT)
  if(NOT DEFINED ${_var} AND DEFINED ENV{${_var}})
    set(${_var} "$ENV{${_var}}")
  endif()
endforeach()

if(ONNXRUNTIME_INCLUDE_DIR)
  find_path(ORT_INCLUDE_DIR ${_ort_header} PATHS "${ONNXRUNTIME_INCLUDE_DIR}"
            PATH_SUFFIXES "" onnxruntime NO_DEFAULT_PATH)
  if(NOT ORT_INCLUDE_DIR)
    message(FATAL_ERROR "ONNXRUNTIME_INCLUDE_DIR=${ONNXRUNTIME_INCLUDE_DIR} has no ${_ort_header}")
  endif()
elseif(ONNXRUNTIME_ROOT)
  find_path(ORT_INCLUDE_DIR ${_ort_header} PATHS "${ONNXRUNTIME_ROOT}"
            PATH_SUFFIXES ${_ort_suffixes} NO_DEFAULT_PATH)
  if(NOT ORT_INCLUDE_DIR)
    message(FATAL_ERROR "ONNXRUNTIME_ROOT=${ONNXRUNTIME_ROOT} has no ${_ort_header} under "
                        "include/ or include/onnxruntime/")
  endif()
else()
  set(_ort_hints /usr/include /usr/local/include /opt/homebrew/include /opt/local/include)
  if(DEFINED ENV{CONDA_PREFIX})
    list(PREPEND _ort_hints "$ENV{CONDA_PREFIX}/include")
  endif()
  find_path(ORT_INCLUDE_DIR ${_ort_header} HINTS ${_ort_hints} PATH_SUFFIXES ${_ort_suffixes})
endif()

if(NOT ORT_INCLUDE_DIR AND EXISTS /etc/debian_version)
  if(DEFINED ENV{INFERSPEED_CACHE_DIR})
    set(_ort_cache "$ENV{INFERSPEED_CACHE_DIR}")
  elseif(DEFINED ENV{XDG_CACHE_HOME})
    set(_ort_cache "$ENV{XDG_CACHE_HOME}/inferspeed")
  elseif(DEFINED ENV{HOME})
    set(_ort_cache "$ENV{HOME}/.cache/inferspeed")
  else()
    set(_ort_cache "${CMAKE_BINARY_DIR}/ort-cache")
  endif()
  message(STATUS "ONNX Runtime headers not found on this system; fetching Debian's "
                 "libonnxruntime-dev (headers only) into ${_ort_cache}")
  execute_process(
    COMMAND "${Python_EXECUTABLE}" "${CMAKE_CURRENT_LIST_DIR}/fetch_ort_headers.py" "${_ort_cache}"
    OUTPUT_VARIABLE _ort_fetched OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_VARIABLE _ort_fetch_error
    RESULT_VARIABLE _ort_fetch_rc)
  if(_ort_fetch_rc EQUAL 0 AND EXISTS "${_ort_fetched}/${_ort_header}")
    set(ORT_INCLUDE_DIR "${_ort_fetched}" CACHE PATH "ONNX Runtime C API headers" FORCE)
  else()
    message(WARNING "Fetching ONNX Runtime headers failed: ${_ort_fetch_error}")
  endif()
endif()

if(NOT ORT_INCLUDE_DIR)
  message(FATAL_ERROR
    "ONNX Runtime's C API header (${_ort_header}) was not found. The onnxruntime wheel ships "
    "no headers. Point the build at them with ONNXRUNTIME_INCLUDE_DIR=/path/to/dir-with-header "
    "or ONNXRUNTIME_ROOT=/path/to/onnxruntime (e.g. an unpacked onnxruntime release archive), "
    "or install them: Debian 13/Ubuntu 'apt install libonnxruntime-dev', Homebrew "
    "'brew install onnxruntime', conda 'conda install -c conda-forge onnxruntime-cpp'.")
endif()

file(STRINGS "${ORT_INCLUDE_DIR}/${_ort_header}" _ort_version_line
     REGEX "^#define ORT_API_VERSION [0-9]+")
string(REGEX MATCH "[0-9]+" ORT_HEADER_API_VERSION "${_ort_version_line}")
if(ORT_HEADER_API_VERSION LESS INFERSPEED_ORT_API_VERSION)
  message(FATAL_ERROR "${ORT_INCLUDE_DIR}/${_ort_header} declares C API version "
                      "${ORT_HEADER_API_VERSION}; inferspeed needs ${INFERSPEED_ORT_API_VERSION} "
                      "or newer (onnxruntime 1.${INFERSPEED_ORT_API_VERSION}+)")
endif()
message(STATUS "ONNX Runtime headers: ${ORT_INCLUDE_DIR} (C API ${ORT_HEADER_API_VERSION}; "
               "requesting ${INFERSPEED_ORT_API_VERSION})")

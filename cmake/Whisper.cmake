# Imports the whisper.cpp build made by scripts/build-whisper as whisper::whisper.
# The CPU variant is static: whisper.cpp's own package config does not describe its static ggml
# dependencies, so the libraries are listed here explicitly, in link order. The CUDA variant is
# shared (one libggml-cuda.so, linked to the toolkit's shared cudart and cuBLAS, for steno and
# whisper-cli alike): libggml.so brings in its CPU and CUDA backends itself.
if(NOT STENO_WHISPER_PREFIX OR NOT EXISTS "${STENO_WHISPER_PREFIX}/include/whisper.h")
  message(FATAL_ERROR "STENO_WHISPER_PREFIX must point at a whisper.cpp install (run scripts/build-whisper)")
endif()

find_package(OpenMP REQUIRED COMPONENTS C CXX)

set(_wlib "${STENO_WHISPER_PREFIX}/lib")
if(NOT EXISTS "${_wlib}/libwhisper.a" AND NOT EXISTS "${_wlib}/libwhisper.so"
   AND EXISTS "${STENO_WHISPER_PREFIX}/lib64")
  set(_wlib "${STENO_WHISPER_PREFIX}/lib64")
endif()

add_library(whisper::whisper INTERFACE IMPORTED)
target_include_directories(whisper::whisper INTERFACE "${STENO_WHISPER_PREFIX}/include")
set(STENO_HAVE_CUDA OFF)
if(EXISTS "${_wlib}/libwhisper.so")
  # Linked by full path, so CMake gives the build tree's programs an rpath to the prefix.
  set(_wlibs "${_wlib}/libwhisper.so" "${_wlib}/libggml.so" "${_wlib}/libggml-base.so")
  if(EXISTS "${_wlib}/libggml-cuda.so")
    set(STENO_HAVE_CUDA ON)
  endif()
else()
  set(_wlibs "${_wlib}/libwhisper.a" "${_wlib}/libggml.a")
  if(EXISTS "${_wlib}/libggml-cuda.a")
    message(FATAL_ERROR "a static CUDA whisper.cpp build is not supported (CUDA 13 has no static "
                        "cuBLAS): rebuild it with scripts/build-whisper")
  endif()
  list(APPEND _wlibs "${_wlib}/libggml-cpu.a" "${_wlib}/libggml-base.a")
endif()
target_link_libraries(whisper::whisper INTERFACE ${_wlibs} OpenMP::OpenMP_CXX ${CMAKE_DL_LIBS} m)
if(STENO_HAVE_CUDA)
  target_compile_definitions(whisper::whisper INTERFACE STENO_HAVE_CUDA=1)
endif()

set(WHISPER_CLI "${STENO_WHISPER_PREFIX}/bin/whisper-cli")
set(WHISPER_BENCH "${STENO_WHISPER_PREFIX}/bin/whisper-bench")

# Imports the static whisper.cpp build made by scripts/build-whisper as whisper::whisper.
# whisper.cpp's own package config does not describe its static ggml dependencies, so the
# libraries are listed here explicitly, in link order.
if(NOT STENO_WHISPER_PREFIX OR NOT EXISTS "${STENO_WHISPER_PREFIX}/include/whisper.h")
  message(FATAL_ERROR "STENO_WHISPER_PREFIX must point at a whisper.cpp install (run scripts/build-whisper)")
endif()

find_package(OpenMP REQUIRED COMPONENTS C CXX)

set(_wlib "${STENO_WHISPER_PREFIX}/lib")
if(NOT EXISTS "${_wlib}/libwhisper.a" AND EXISTS "${STENO_WHISPER_PREFIX}/lib64/libwhisper.a")
  set(_wlib "${STENO_WHISPER_PREFIX}/lib64")
endif()

add_library(whisper::whisper INTERFACE IMPORTED)
target_include_directories(whisper::whisper INTERFACE "${STENO_WHISPER_PREFIX}/include")
set(_wlibs "${_wlib}/libwhisper.a" "${_wlib}/libggml.a")
set(STENO_HAVE_CUDA OFF)
if(EXISTS "${_wlib}/libggml-cuda.a")
  set(STENO_HAVE_CUDA ON)
  list(APPEND _wlibs "${_wlib}/libggml-cuda.a")
endif()
list(APPEND _wlibs "${_wlib}/libggml-cpu.a" "${_wlib}/libggml-base.a")
target_link_libraries(whisper::whisper INTERFACE ${_wlibs} OpenMP::OpenMP_CXX ${CMAKE_DL_LIBS} m)
if(STENO_HAVE_CUDA)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  target_link_libraries(whisper::whisper INTERFACE CUDA::cudart_static CUDA::cublas_static CUDA::cublasLt_static CUDA::cuda_driver)
  target_compile_definitions(whisper::whisper INTERFACE STENO_HAVE_CUDA=1)
endif()

set(WHISPER_CLI "${STENO_WHISPER_PREFIX}/bin/whisper-cli")
set(WHISPER_BENCH "${STENO_WHISPER_PREFIX}/bin/whisper-bench")

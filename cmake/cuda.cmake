# The optional CUDA backend: a second extension module, fusedrnn._cuda, so that `import
# fusedrnn` never needs a CUDA library. Included at the end of the top-level CMakeLists.txt.
#
#   FUSEDRNN_CUDA=AUTO  build it when nvcc AND cuBLAS are both found, else a CPU-only build
#                       (a toolkit may come without cuBLAS, as this project's CUDA 13 does:
#                       check_language(CUDA) alone would say yes and the link would fail)
#   FUSEDRNN_CUDA=ON    build it or fail, saying what is missing
#   FUSEDRNN_CUDA=OFF   never
#
# cuBLAS is looked up first (a Python query and a file test, no compiler run), so a CPU-only
# build where cuBLAS is absent never starts nvcc and configures as fast as before.
set(FUSEDRNN_CUDA AUTO CACHE STRING "Build the CUDA backend fusedrnn._cuda: AUTO, ON or OFF")
set_property(CACHE FUSEDRNN_CUDA PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${FUSEDRNN_CUDA}" _fusedrnn_cuda_mode)
if(NOT _fusedrnn_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "FUSEDRNN_CUDA: expected AUTO, ON or OFF, got '${FUSEDRNN_CUDA}'")
endif()
if(_fusedrnn_cuda_mode STREQUAL "OFF")
  return()
endif()

# AUTO: a status line and a CPU-only build; ON: a configure error.
macro(fusedrnn_cuda_missing reason)
  if(_fusedrnn_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "FUSEDRNN_CUDA=ON: ${reason}")
  endif()
  message(STATUS "fusedrnn: CUDA backend not built (${reason}); set FUSEDRNN_CUDA=ON to require it")
  return()
endmacro()

# cuBLAS: FUSEDRNN_CUBLAS_DIR if given (a directory with include/cublas_v2.h and
# lib/libcublas.so.N, e.g. the nvidia-cublas wheel's nvidia/cu13: pip's isolated build
# environment cannot see the wheel installed beside it), else the nvidia-cublas wheel of the
# building Python (nvidia/cu13, nvidia/cu12, older nvidia/cublas), else the CUDA toolkit's.
# Linked by soname; at import fusedrnn.cuda preloads the wheel's library (RTLD_GLOBAL), as for
# scipy-openblas32.
set(FUSEDRNN_CUBLAS_DIR "$ENV{FUSEDRNN_CUBLAS_DIR}" CACHE PATH
    "cuBLAS directory with include/ and lib/ (default: the nvidia-cublas wheel, then the toolkit)")
set(_fusedrnn_cublas_wheel "${FUSEDRNN_CUBLAS_DIR}")
if(NOT _fusedrnn_cublas_wheel)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c [=[
import importlib.util, os
spec = importlib.util.find_spec("nvidia")
for base in (spec.submodule_search_locations if spec else []):
    for sub in ("cu13", "cu12", "cublas"):
        d = os.path.join(base, sub)
        if os.path.isfile(os.path.join(d, "include", "cublas_v2.h")):
            print(d, end="")
            raise SystemExit(0)
]=]
    OUTPUT_VARIABLE _fusedrnn_cublas_wheel
    ERROR_QUIET)
endif()
set(_fusedrnn_cublas_lib "")
if(_fusedrnn_cublas_wheel)
  file(GLOB _fusedrnn_cublas_lib "${_fusedrnn_cublas_wheel}/lib/libcublas.so.[0-9]*")
  file(GLOB _fusedrnn_cublaslt_lib "${_fusedrnn_cublas_wheel}/lib/libcublasLt.so.[0-9]*")
endif()
if(FUSEDRNN_CUBLAS_DIR AND NOT (_fusedrnn_cublas_lib AND _fusedrnn_cublaslt_lib))
  fusedrnn_cuda_missing("FUSEDRNN_CUBLAS_DIR=${FUSEDRNN_CUBLAS_DIR} has no lib/libcublas.so.N and lib/libcublasLt.so.N")
endif()
if(_fusedrnn_cublas_lib AND _fusedrnn_cublaslt_lib)
  list(GET _fusedrnn_cublas_lib 0 _fusedrnn_cublas_lib)
  list(GET _fusedrnn_cublaslt_lib 0 _fusedrnn_cublaslt_lib)
  add_library(fusedrnn_cublas SHARED IMPORTED)
  set_target_properties(fusedrnn_cublas PROPERTIES
    IMPORTED_LOCATION "${_fusedrnn_cublas_lib}"
    INTERFACE_INCLUDE_DIRECTORIES "${_fusedrnn_cublas_wheel}/include"
    # libcublas needs libcublasLt; the linker finds it next to libcublas at link time only.
    INTERFACE_LINK_OPTIONS "LINKER:-rpath-link,${_fusedrnn_cublas_wheel}/lib")
  set(_fusedrnn_cublas_from "${_fusedrnn_cublas_wheel}")
else()
  # The toolkit's cuBLAS: a file test next to nvcc first, so that a toolkit without it (this
  # project's) costs no FindCUDAToolkit run (which starts nvcc) in a CPU-only configure.
  find_program(_fusedrnn_nvcc nvcc HINTS ENV CUDA_PATH ENV CUDA_HOME PATH_SUFFIXES bin)
  set(_fusedrnn_toolkit_cublas "")
  if(_fusedrnn_nvcc)
    get_filename_component(_fusedrnn_nvcc_real "${_fusedrnn_nvcc}" REALPATH)
    get_filename_component(_fusedrnn_toolkit "${_fusedrnn_nvcc_real}" DIRECTORY)
    get_filename_component(_fusedrnn_toolkit "${_fusedrnn_toolkit}" DIRECTORY)
    file(GLOB _fusedrnn_toolkit_cublas "${_fusedrnn_toolkit}/include/cublas_v2.h"
         "${_fusedrnn_toolkit}/targets/*/include/cublas_v2.h")
  endif()
  if(_fusedrnn_toolkit_cublas)
    find_package(CUDAToolkit QUIET)
  endif()
  if(NOT TARGET CUDA::cublas)
    fusedrnn_cuda_missing("cuBLAS not found: neither the nvidia-cublas wheel (pip install nvidia-cublas; pip's isolated build does not see it: add --no-build-isolation or -Ccmake.define.FUSEDRNN_CUBLAS_DIR=<site-packages>/nvidia/cu13) nor the CUDA toolkit's")
  endif()
  add_library(fusedrnn_cublas INTERFACE)
  target_link_libraries(fusedrnn_cublas INTERFACE CUDA::cublas)
  set(_fusedrnn_cublas_from "the CUDA toolkit (${CUDAToolkit_LIBRARY_DIR})")
endif()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  fusedrnn_cuda_missing("no CUDA compiler (nvcc) found")
endif()

# Hopper (the lent H100/H200) as machine code, Ampere as machine code, and compute_90 PTX that
# the driver compiles for newer GPUs. Override with -DCMAKE_CUDA_ARCHITECTURES=...
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80-real;90")
endif()
# The CUDA runtime linked in statically: the module needs only the driver (libcuda) at run
# time, which it loads itself, so without a driver it still imports (no device: a clear error).
set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)
message(STATUS "fusedrnn: CUDA backend for ${CMAKE_CUDA_ARCHITECTURES} with nvcc "
               "${CMAKE_CUDA_COMPILER_VERSION}; cuBLAS from ${_fusedrnn_cublas_from}")

# The kernels: a static library with no Python in it.
add_library(fusedrnn_cuda STATIC
  csrc/cuda/cublas_gemm.cu
  csrc/cuda/device.cu
  csrc/cuda/gru_cuda.cu
  csrc/cuda/lstm_cuda.cu
  csrc/cuda/reductions.cu)
set_target_properties(fusedrnn_cuda PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  CUDA_RUNTIME_LIBRARY Static)
target_include_directories(fusedrnn_cuda PUBLIC csrc/include csrc/cuda)
target_link_libraries(fusedrnn_cuda PUBLIC fusedrnn_cublas)
target_compile_options(fusedrnn_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcompiler=-Wall,-Wextra>)

# The Python module: argument checks are in fusedrnn/cuda.py; this takes device pointers.
pybind11_add_module(_cuda MODULE csrc/cuda/bindings.cpp)
set_target_properties(_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Static)
target_link_libraries(_cuda PRIVATE fusedrnn_cuda)
target_compile_options(_cuda PRIVATE -Wall -Wextra)
install(TARGETS _cuda LIBRARY DESTINATION fusedrnn)

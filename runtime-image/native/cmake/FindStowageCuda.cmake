# Finds a CUDA toolkit laid out either as a normal install (/usr/local/cuda, CUDA_PATH, nvcc on PATH)
# or as NVIDIA's CUDA 13 PyPI wheels (nvidia-cuda-nvcc, nvidia-cuda-runtime, nvidia-cuda-cccl, nvidia-cuda-crt and
# nvidia-nvvm share one tree: site-packages/nvidia/cu13/{bin,include,lib,nvvm}).
#
# Sets StowageCuda_FOUND, STW_CUDA_NVCC (the nvcc to use) and STW_CUDA_ROOT (the directory above its bin/).
# Search order: -DSTW_CUDA_ROOT=..., $CUDA_PATH, $CUDA_HOME, nvcc on PATH, /usr/local/cuda, then the wheels of
# the python3 on PATH (its purelib and user site). A candidate counts only with its cuda_runtime.h and
# libcudart_static.a beside it, so a half-installed wheel set is reported instead of failing in the compile.

set(_stw_cuda_candidates)
if(STW_CUDA_ROOT)
  list(APPEND _stw_cuda_candidates "${STW_CUDA_ROOT}")
endif()
foreach(_env CUDA_PATH CUDA_HOME)
  if(DEFINED ENV{${_env}} AND NOT "$ENV{${_env}}" STREQUAL "")
    list(APPEND _stw_cuda_candidates "$ENV{${_env}}")
  endif()
endforeach()
find_program(_stw_nvcc_on_path nvcc)
if(_stw_nvcc_on_path)
  get_filename_component(_stw_real "${_stw_nvcc_on_path}" REALPATH)
  get_filename_component(_stw_dir "${_stw_real}" DIRECTORY)
  get_filename_component(_stw_dir "${_stw_dir}" DIRECTORY)
  list(APPEND _stw_cuda_candidates "${_stw_dir}")
endif()
unset(_stw_nvcc_on_path CACHE)
list(APPEND _stw_cuda_candidates /usr/local/cuda)

find_program(_stw_python3 python3)
if(_stw_python3)
  execute_process(
    COMMAND "${_stw_python3}" -c "import site, sysconfig; print(';'.join([sysconfig.get_paths()['purelib']] + [site.getusersitepackages()]))"
    OUTPUT_VARIABLE _stw_site OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _stw_py_rc)
  if(_stw_py_rc EQUAL 0)
    foreach(_sp ${_stw_site})
      file(GLOB _stw_wheel_roots LIST_DIRECTORIES true "${_sp}/nvidia/cu1[3-9]")
      list(SORT _stw_wheel_roots ORDER DESCENDING)
      list(APPEND _stw_cuda_candidates ${_stw_wheel_roots})
    endforeach()
  endif()
endif()
unset(_stw_python3 CACHE)

set(StowageCuda_FOUND FALSE)
set(StowageCuda_REASON "no nvcc in STW_CUDA_ROOT, CUDA_PATH, CUDA_HOME, PATH, /usr/local/cuda or python3's nvidia wheels")
foreach(_root ${_stw_cuda_candidates})
  if(NOT EXISTS "${_root}/bin/nvcc")
    continue()
  endif()
  if(NOT EXISTS "${_root}/include/cuda_runtime.h"
     OR NOT (EXISTS "${_root}/lib/libcudart_static.a" OR EXISTS "${_root}/lib64/libcudart_static.a"))
    set(StowageCuda_REASON "nvcc at ${_root}/bin/nvcc has no cuda_runtime.h and libcudart_static.a beside it (install nvidia-cuda-runtime)")
    continue()
  endif()
  if(NOT EXISTS "${_root}/nvvm/bin/cicc")
    set(StowageCuda_REASON "nvcc at ${_root}/bin/nvcc has no nvvm/bin/cicc (install nvidia-nvvm)")
    continue()
  endif()
  get_filename_component(STW_CUDA_ROOT "${_root}" ABSOLUTE)
  set(STW_CUDA_NVCC "${STW_CUDA_ROOT}/bin/nvcc")
  set(StowageCuda_FOUND TRUE)
  break()
endforeach()

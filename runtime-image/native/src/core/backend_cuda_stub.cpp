// backend_cuda_stub.cpp: stw_backend_cuda_create for a library built without the CUDA backend (src/cuda
// provides the real one and the build defines STW_HAVE_CUDA, which empties this file).
#include "core.h"

#if !defined(STW_HAVE_CUDA)
__attribute__((weak)) stw_status stw_backend_cuda_create(stw_backend *, int32_t ordinal) {
    return stw_error(STW_STATUS_UNSUPPORTED,
                     "CUDA backend not built into this library (device cuda:%d asked; rebuild with nvcc and STW_CUDA=ON, "
                     "or serve on the cpu)",
                     ordinal);
}
#endif

// device.cu: device discovery, memory, streams and synchronisation of the CUDA backend, every CUDA error a status.
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "common.cuh"

namespace {
thread_local char g_error[512];
}  // namespace

const char *stw_cuda_last_error(void) { return g_error; }

namespace stw_cuda {

int fail(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    return status;
}

int fail_cuda(cudaError_t err, const char *what) {
    int status = STW_CUDA_STATUS_LAUNCH;
    switch (err) {
        case cudaErrorNoDevice:
        case cudaErrorInsufficientDriver:
        case cudaErrorInvalidDevice:
#if CUDART_VERSION < 13000
        case cudaErrorDevicesUnavailable:
#endif
            status = STW_CUDA_STATUS_NO_DEVICE;
            break;
        case cudaErrorMemoryAllocation:
            status = STW_CUDA_STATUS_OUT_OF_MEMORY;
            break;
        case cudaErrorIllegalAddress:
        case cudaErrorLaunchFailure:
        case cudaErrorHardwareStackError:
        case cudaErrorIllegalInstruction:
        case cudaErrorMisalignedAddress:
        case cudaErrorInvalidAddressSpace:
        case cudaErrorInvalidPc:
        case cudaErrorECCUncorrectable:
        case cudaErrorContextIsDestroyed:
            // sticky errors: the context is unusable until the process ends, so the backend must be dropped
            status = STW_CUDA_STATUS_DEVICE_LOST;
            break;
        default:
            break;
    }
    return fail(status, "%s: %s: %s", what, cudaGetErrorName(err), cudaGetErrorString(err));
}

}  // namespace stw_cuda

int stw_cuda_device_count(void) {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        stw_cuda::fail_cuda(err, "cudaGetDeviceCount");
        cudaGetLastError();  // not sticky: clear it so later calls do not see it
        return 0;
    }
    if (n == 0) stw_cuda::fail(STW_CUDA_STATUS_NO_DEVICE, "the CUDA driver reports no GPU");
    return n;
}

int stw_cuda_device_open(int ordinal, stw_cuda_device_info *info) {
    const int n = stw_cuda_device_count();
    if (n == 0) return STW_CUDA_STATUS_NO_DEVICE;
    if (ordinal < 0 || ordinal >= n)
        return stw_cuda::fail(STW_CUDA_STATUS_NO_DEVICE, "CUDA device %d asked for, but %d %s visible (ordinals 0..%d)",
                              ordinal, n, n == 1 ? "is" : "are", n - 1);
    STW_CUDA_TRY(cudaSetDevice(ordinal));
    cudaDeviceProp p;
    STW_CUDA_TRY(cudaGetDeviceProperties(&p, ordinal));
    std::memset(info, 0, sizeof *info);
    std::snprintf(info->name, sizeof info->name, "%s", p.name);
    const unsigned char *u = (const unsigned char *)p.uuid.bytes;
    std::snprintf(info->uuid, sizeof info->uuid, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                  u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    info->sm_major = p.major;
    info->sm_minor = p.minor;
    info->multiprocessors = p.multiProcessorCount;
    size_t free_b = 0, total_b = 0;
    STW_CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
    info->free_bytes = free_b;
    info->total_bytes = total_b;
    return 0;
}

int stw_cuda_malloc(void **out, size_t bytes, uint64_t budget_left) {
    *out = nullptr;
    if (bytes == 0) return stw_cuda::fail(STW_CUDA_STATUS_BAD_ARGUMENT, "cudaMalloc of 0 bytes asked");
    const cudaError_t err = cudaMalloc(out, bytes);
    if (err == cudaSuccess) return 0;
    *out = nullptr;
    if (err != cudaErrorMemoryAllocation) return stw_cuda::fail_cuda(err, "cudaMalloc");
    cudaGetLastError();  // an allocation failure is not sticky
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    char budget[64];
    if (budget_left == UINT64_MAX) std::snprintf(budget, sizeof budget, "none set");
    else std::snprintf(budget, sizeof budget, "%llu bytes left", (unsigned long long)budget_left);
    return stw_cuda::fail(STW_CUDA_STATUS_OUT_OF_MEMORY,
                          "device allocation of %zu bytes failed: the GPU has %zu of %zu bytes free (budget: %s); "
                          "lower maxTokens/maxSequences or move a model off this GPU",
                          bytes, free_b, total_b, budget);
}

void stw_cuda_free(void *p) {
    if (p) cudaFree(p);
}

int stw_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes, void *stream) {
    STW_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, (cudaStream_t)stream));
    return 0;
}

int stw_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes, void *stream) {
    STW_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, (cudaStream_t)stream));
    return 0;
}

int stw_cuda_memset(void *dst, int value, size_t bytes, void *stream) {
    STW_CUDA_TRY(cudaMemsetAsync(dst, value, bytes, (cudaStream_t)stream));
    return 0;
}

int stw_cuda_stream_create(void **out) {
    cudaStream_t s = nullptr;
    *out = nullptr;
    STW_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    *out = s;
    return 0;
}

void stw_cuda_stream_destroy(void *stream) {
    if (stream) cudaStreamDestroy((cudaStream_t)stream);
}

int stw_cuda_synchronize(void *stream) {
    const cudaError_t err = stream ? cudaStreamSynchronize((cudaStream_t)stream) : cudaDeviceSynchronize();
    if (err != cudaSuccess) return stw_cuda::fail_cuda(err, "a kernel of this step (cudaStreamSynchronize)");
    return 0;
}

int stw_cuda_measure_copy(size_t bytes, int iters, double *seconds) {
    *seconds = 0;
    void *a = nullptr, *b = nullptr;
    if (int rc = stw_cuda_malloc(&a, bytes, UINT64_MAX)) return rc;
    if (int rc = stw_cuda_malloc(&b, bytes, UINT64_MAX)) {
        stw_cuda_free(a);
        return rc;
    }
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    int rc = 0;
    float best = -1.0f;
    if (cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) {
        rc = stw_cuda::fail_cuda(cudaGetLastError(), "cudaEventCreate");
    } else {
        for (int i = 0; i <= iters && rc == 0; i++) {  // iteration 0 warms up
            cudaEventRecord(e0);
            cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice);
            cudaEventRecord(e1);
            const cudaError_t err = cudaEventSynchronize(e1);
            if (err != cudaSuccess) {
                rc = stw_cuda::fail_cuda(err, "device-to-device copy");
                break;
            }
            float ms = 0;
            cudaEventElapsedTime(&ms, e0, e1);
            if (i > 0 && (best < 0 || ms < best)) best = ms;
        }
    }
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    stw_cuda_free(a);
    stw_cuda_free(b);
    if (rc == 0) *seconds = best / 1000.0;
    return rc;
}

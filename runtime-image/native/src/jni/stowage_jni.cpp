// JNI glue between io.stowage.runtime.engine.NativeEngine and the C API in stowage.h.
//
// Rules of this file (STYLE.md, JNI section):
//  - it calls only the public header stowage.h;
//  - classes and method IDs are looked up once in JNI_OnLoad; a missing one fails the load early;
//  - a failed stw_* call becomes a pending Java exception built by NativeErrors.create(status, message),
//    so the mapping from status codes to exception types lives in Java, in one place;
//  - nothing here exits, aborts or lets a C++ exception cross into the JVM.

#include <jni.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "stowage.h"

namespace {

// Cached in JNI_OnLoad (global refs live until the library unloads).
jclass g_errors_class = nullptr;          // io.stowage.runtime.engine.NativeErrors
jmethodID g_errors_create = nullptr;      // static Throwable create(int status, String message)
jclass g_illegal_argument = nullptr;      // java.lang.IllegalArgumentException
jclass g_out_of_memory = nullptr;         // java.lang.OutOfMemoryError
jclass g_progress_class = nullptr;        // io.stowage.runtime.engine.UploadProgress
jmethodID g_progress_method = nullptr;    // boolean onProgress(long done, long total)
jclass g_string_class = nullptr;          // java.lang.String

// Numbers of the int/float arrays that carry stw_hparams across (NativeEngine.HPARAM_INTS / HPARAM_FLOATS).
constexpr jsize kHparamInts = 12;
constexpr jsize kHparamFloats = 2;
// Per tensor: type, n_dims (ints) and ne[0..3], offset, nbytes (longs).
constexpr jsize kTensorInts = 2;
constexpr jsize kTensorLongs = 6;
constexpr jsize kSamplerFloats = 4;

jstring new_utf(JNIEnv *env, const char *s) { return env->NewStringUTF(s != nullptr ? s : ""); }

// Builds the Java exception for status and makes it pending. Falls back to a plain exception when the
// factory itself fails (it then has already thrown something, which stays pending).
void throw_status(JNIEnv *env, stw_status status, const char *where) {
    if (env->ExceptionCheck()) return;
    const char *detail = stw_last_error();
    std::string message = std::string(where) + ": " + (detail != nullptr && detail[0] != '\0' ? detail : "no detail given");
    jstring jmessage = env->NewStringUTF(message.c_str());
    if (jmessage == nullptr) return;  // OutOfMemoryError pending
    jobject error = env->CallStaticObjectMethod(g_errors_class, g_errors_create, static_cast<jint>(status), jmessage);
    env->DeleteLocalRef(jmessage);
    if (env->ExceptionCheck()) return;
    if (error != nullptr) {
        env->Throw(static_cast<jthrowable>(error));
        env->DeleteLocalRef(error);
    }
}

void throw_illegal_argument(JNIEnv *env, const std::string &message) {
    if (!env->ExceptionCheck()) env->ThrowNew(g_illegal_argument, message.c_str());
}

// A null-terminated copy of a Java byte[] (UTF-8 text crosses as bytes).
bool copy_c_string(JNIEnv *env, jbyteArray bytes, const char *what, std::string &out) {
    if (bytes == nullptr) {
        throw_illegal_argument(env, std::string(what) + " must not be null");
        return false;
    }
    jsize n = env->GetArrayLength(bytes);
    out.assign(static_cast<size_t>(n), '\0');
    if (n > 0) env->GetByteArrayRegion(bytes, 0, n, reinterpret_cast<jbyte *>(&out[0]));
    if (out.find('\0') != std::string::npos) {
        throw_illegal_argument(env, std::string(what) + " contains a NUL byte");
        return false;
    }
    return !env->ExceptionCheck();
}

bool check_length(JNIEnv *env, jarray array, jsize at_least, const char *what) {
    if (array == nullptr) {
        throw_illegal_argument(env, std::string(what) + " must not be null");
        return false;
    }
    jsize n = env->GetArrayLength(array);
    if (n < at_least) {
        throw_illegal_argument(env, std::string(what) + " has " + std::to_string(n) + " elements but at least " +
                                        std::to_string(at_least) + " are needed");
        return false;
    }
    return true;
}

template <typename T> T *from_handle(jlong handle) { return reinterpret_cast<T *>(static_cast<intptr_t>(handle)); }
template <typename T> jlong to_handle(T *pointer) { return static_cast<jlong>(reinterpret_cast<intptr_t>(pointer)); }

jclass global_class(JNIEnv *env, const char *name) {
    jclass local = env->FindClass(name);
    if (local == nullptr) return nullptr;
    auto global = static_cast<jclass>(env->NewGlobalRef(local));
    env->DeleteLocalRef(local);
    return global;
}

}  // namespace

#define STW_JNI(name) JNICALL Java_io_stowage_runtime_engine_NativeEngine_##name

// Catches what must never reach the JVM: std::bad_alloc from the glue's own vectors, or anything else.
#define STW_GUARD_BEGIN try {
#define STW_GUARD_END(env, fallback)                                                               \
    }                                                                                              \
    catch (const std::bad_alloc &) {                                                               \
        if (!(env)->ExceptionCheck()) (env)->ThrowNew(g_out_of_memory, "stowage JNI: native allocation failed"); \
        return fallback;                                                                           \
    }                                                                                              \
    catch (...) {                                                                                  \
        throw_status(env, STW_STATUS_INTERNAL, "stowage JNI: unexpected C++ exception");          \
        return fallback;                                                                           \
    }

extern "C" {

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *) {
    JNIEnv *env = nullptr;
    if (vm->GetEnv(reinterpret_cast<void **>(&env), JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
    g_illegal_argument = global_class(env, "java/lang/IllegalArgumentException");
    g_out_of_memory = global_class(env, "java/lang/OutOfMemoryError");
    g_errors_class = global_class(env, "io/stowage/runtime/engine/NativeErrors");
    if (g_illegal_argument == nullptr || g_out_of_memory == nullptr || g_errors_class == nullptr) return JNI_ERR;
    g_errors_create = env->GetStaticMethodID(g_errors_class, "create", "(ILjava/lang/String;)Ljava/lang/Throwable;");
    if (g_errors_create == nullptr) return JNI_ERR;  // NoSuchMethodError pending: the load fails with it
    g_progress_class = global_class(env, "io/stowage/runtime/engine/UploadProgress");
    g_string_class = global_class(env, "java/lang/String");
    if (g_progress_class == nullptr || g_string_class == nullptr) return JNI_ERR;
    g_progress_method = env->GetMethodID(g_progress_class, "onProgress", "(JJ)Z");
    if (g_progress_method == nullptr) return JNI_ERR;
    return JNI_VERSION_1_8;
}

JNIEXPORT void JNICALL JNI_OnUnload(JavaVM *vm, void *) {
    JNIEnv *env = nullptr;
    if (vm->GetEnv(reinterpret_cast<void **>(&env), JNI_VERSION_1_8) != JNI_OK) return;
    if (g_errors_class != nullptr) env->DeleteGlobalRef(g_errors_class);
    if (g_illegal_argument != nullptr) env->DeleteGlobalRef(g_illegal_argument);
    if (g_out_of_memory != nullptr) env->DeleteGlobalRef(g_out_of_memory);
    if (g_progress_class != nullptr) env->DeleteGlobalRef(g_progress_class);
    if (g_string_class != nullptr) env->DeleteGlobalRef(g_string_class);
}

JNIEXPORT jstring STW_JNI(version)(JNIEnv *env, jclass) { return new_utf(env, stw_version()); }

JNIEXPORT jstring STW_JNI(cpuFeatures)(JNIEnv *env, jclass) { return new_utf(env, stw_cpu_features()); }

JNIEXPORT jboolean STW_JNI(backendKindBuilt)(JNIEnv *, jclass, jint kind) {
    return stw_backend_kind_built(static_cast<stw_backend_kind>(kind)) ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT jlong STW_JNI(backendInit)(JNIEnv *env, jclass, jint kind, jint ordinal, jint threads) {
    stw_backend *be = nullptr;
    stw_status st = stw_backend_init(static_cast<stw_backend_kind>(kind), ordinal, threads, &be);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_backend_init");
        return 0;
    }
    return to_handle(be);
}

JNIEXPORT jlong STW_JNI(backendInitUuid)(JNIEnv *env, jclass, jbyteArray uuid, jint threads) {
    STW_GUARD_BEGIN
    std::string c_uuid;
    if (!copy_c_string(env, uuid, "GPU UUID", c_uuid)) return 0;
    stw_backend *be = nullptr;
    stw_status st = stw_backend_init_uuid(c_uuid.c_str(), threads, &be);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_backend_init_uuid");
        return 0;
    }
    return to_handle(be);
    STW_GUARD_END(env, 0)
}

JNIEXPORT void STW_JNI(backendFree)(JNIEnv *env, jclass, jlong be) {
    stw_status st = stw_backend_free(from_handle<stw_backend>(be));
    if (st != STW_STATUS_OK) throw_status(env, st, "stw_backend_free");
}

// numbers receives kind, ordinal, total bytes; returns {name, uuid}.
JNIEXPORT jobjectArray STW_JNI(backendDeviceInfo)(JNIEnv *env, jclass, jlong be, jlongArray numbers) {
    if (!check_length(env, numbers, 3, "device info numbers")) return nullptr;
    stw_device_info info;
    stw_status st = stw_backend_device_info(from_handle<stw_backend>(be), &info);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_backend_device_info");
        return nullptr;
    }
    info.name[sizeof info.name - 1] = '\0';
    info.uuid[sizeof info.uuid - 1] = '\0';
    jlong n[3] = {info.kind, info.ordinal, static_cast<jlong>(info.total_bytes)};
    env->SetLongArrayRegion(numbers, 0, 3, n);
    jobjectArray out = env->NewObjectArray(2, g_string_class, nullptr);
    if (out == nullptr) return nullptr;
    jstring name = new_utf(env, info.name);
    if (name == nullptr) return nullptr;
    env->SetObjectArrayElement(out, 0, name);
    jstring uuid = new_utf(env, info.uuid);
    if (uuid == nullptr) return nullptr;
    env->SetObjectArrayElement(out, 1, uuid);
    return out;
}

// out receives free bytes, total bytes.
JNIEXPORT void STW_JNI(backendMemoryInfo)(JNIEnv *env, jclass, jlong be, jlongArray out) {
    if (!check_length(env, out, 2, "memory info")) return;
    uint64_t free_b = 0, total_b = 0;
    stw_status st = stw_backend_memory_info(from_handle<stw_backend>(be), &free_b, &total_b);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_backend_memory_info");
        return;
    }
    jlong v[2] = {static_cast<jlong>(free_b), static_cast<jlong>(total_b)};
    env->SetLongArrayRegion(out, 0, 2, v);
}

JNIEXPORT jlong STW_JNI(backendAllocatedBytes)(JNIEnv *, jclass, jlong be) {
    return static_cast<jlong>(stw_backend_allocated_bytes(from_handle<stw_backend>(be)));
}

JNIEXPORT jlong STW_JNI(backendWorkspaceBytes)(JNIEnv *, jclass, jlong be) {
    return static_cast<jlong>(stw_backend_workspace_bytes(from_handle<stw_backend>(be)));
}

JNIEXPORT jboolean STW_JNI(backendSupportsType)(JNIEnv *, jclass, jlong be, jint type, jint use) {
    return stw_backend_supports_type(from_handle<stw_backend>(be), type, use) ? JNI_TRUE : JNI_FALSE;
}

namespace {
struct progress_call {
    JNIEnv *env;
    jobject listener;
};

// Calls the Java listener; its false, or an exception it throws (left pending), cancels the upload.
int32_t call_progress(uint64_t done, uint64_t total, void *user) {
    progress_call *p = static_cast<progress_call *>(user);
    jboolean go = p->env->CallBooleanMethod(p->listener, g_progress_method, static_cast<jlong>(done), static_cast<jlong>(total));
    if (p->env->ExceptionCheck()) return 1;
    return go ? 0 : 1;
}
}  // namespace

JNIEXPORT void STW_JNI(modelLoad)(JNIEnv *env, jclass, jlong model, jlong be, jobject listener) {
    progress_call call{env, listener};
    stw_status st = stw_model_load(from_handle<stw_model>(model), from_handle<stw_backend>(be),
                                   listener != nullptr ? call_progress : nullptr, &call);
    if (st != STW_STATUS_OK) throw_status(env, st, "stw_model_load");  // a listener's exception stays pending instead
}

JNIEXPORT void STW_JNI(modelUnload)(JNIEnv *, jclass, jlong model, jlong be) {
    stw_model_unload(from_handle<stw_model>(model), from_handle<stw_backend>(be));
}

JNIEXPORT jlong STW_JNI(modelDeviceBytes)(JNIEnv *, jclass, jlong model, jlong be) {
    return static_cast<jlong>(stw_model_device_bytes(from_handle<stw_model>(model), from_handle<stw_backend>(be)));
}

JNIEXPORT jlong STW_JNI(kvPoolInitOn)(JNIEnv *env, jclass, jlong be, jlong model, jint kv_type, jlong budget) {
    if (budget < 0) {
        throw_illegal_argument(env, "KV pool budget must be >= 0 bytes, got " + std::to_string(budget));
        return 0;
    }
    stw_kv_pool *pool = nullptr;
    stw_status st = stw_kv_pool_init_on(from_handle<stw_backend>(be), from_handle<stw_model>(model), kv_type,
                                        static_cast<uint64_t>(budget), &pool);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_kv_pool_init_on");
        return 0;
    }
    return to_handle(pool);
}

JNIEXPORT jlong STW_JNI(contextInitOn)(JNIEnv *env, jclass, jlong be, jlong model, jint batch, jint rows) {
    stw_context *ctx = nullptr;
    stw_status st = stw_context_init_on(from_handle<stw_backend>(be), from_handle<stw_model>(model), batch, rows, &ctx);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_context_init_on");
        return 0;
    }
    return to_handle(ctx);
}

JNIEXPORT jlong STW_JNI(modelInit)(JNIEnv *env, jclass, jbyteArray path, jintArray hp_ints, jfloatArray hp_floats,
                                    jbyteArray names, jintArray tensor_ints, jlongArray tensor_longs) {
    STW_GUARD_BEGIN
    std::string c_path;
    if (!copy_c_string(env, path, "model path", c_path)) return 0;
    if (!check_length(env, hp_ints, kHparamInts, "hparams ints") ||
        !check_length(env, hp_floats, kHparamFloats, "hparams floats") || names == nullptr ||
        !check_length(env, tensor_ints, 0, "tensor ints") || !check_length(env, tensor_longs, 0, "tensor longs")) {
        if (names == nullptr) throw_illegal_argument(env, "tensor names must not be null");
        return 0;
    }
    jint hi[kHparamInts];
    jfloat hf[kHparamFloats];
    env->GetIntArrayRegion(hp_ints, 0, kHparamInts, hi);
    env->GetFloatArrayRegion(hp_floats, 0, kHparamFloats, hf);
    stw_hparams hp{};
    hp.arch = hi[0];
    hp.n_layer = hi[1];
    hp.n_embd = hi[2];
    hp.n_ff = hi[3];
    hp.n_head = hi[4];
    hp.n_head_kv = hi[5];
    hp.head_dim_k = hi[6];
    hp.head_dim_v = hi[7];
    hp.n_vocab = hi[8];
    hp.n_ctx_train = hi[9];
    hp.rope_dim = hi[10];
    hp.rope_type = hi[11];
    hp.rope_freq_base = hf[0];
    hp.rms_eps = hf[1];

    jsize n_tensors = env->GetArrayLength(tensor_ints) / kTensorInts;
    if (env->GetArrayLength(tensor_ints) != n_tensors * kTensorInts ||
        env->GetArrayLength(tensor_longs) != n_tensors * kTensorLongs) {
        throw_illegal_argument(env, "tensor descriptor arrays disagree on the number of tensors");
        return 0;
    }
    // Names: n_tensors NUL-terminated UTF-8 strings back to back.
    std::vector<char> name_bytes(static_cast<size_t>(env->GetArrayLength(names)) + 1, '\0');
    if (name_bytes.size() > 1)
        env->GetByteArrayRegion(names, 0, env->GetArrayLength(names), reinterpret_cast<jbyte *>(name_bytes.data()));
    std::vector<jint> ti(static_cast<size_t>(n_tensors) * kTensorInts);
    std::vector<jlong> tl(static_cast<size_t>(n_tensors) * kTensorLongs);
    if (n_tensors > 0) {
        env->GetIntArrayRegion(tensor_ints, 0, n_tensors * kTensorInts, ti.data());
        env->GetLongArrayRegion(tensor_longs, 0, n_tensors * kTensorLongs, tl.data());
    }
    std::vector<stw_tensor_desc> descs(static_cast<size_t>(n_tensors));
    size_t pos = 0;
    for (jsize i = 0; i < n_tensors; i++) {
        if (pos >= name_bytes.size() - 1) {
            throw_illegal_argument(env, "tensor names: fewer names than the " + std::to_string(n_tensors) + " descriptors");
            return 0;
        }
        stw_tensor_desc &d = descs[static_cast<size_t>(i)];
        d.name = name_bytes.data() + pos;
        pos += std::strlen(d.name) + 1;
        d.type = ti[static_cast<size_t>(i) * kTensorInts];
        d.n_dims = ti[static_cast<size_t>(i) * kTensorInts + 1];
        const jlong *l = &tl[static_cast<size_t>(i) * kTensorLongs];
        for (int k = 0; k < 4; k++) d.ne[k] = l[k];
        d.offset = static_cast<uint64_t>(l[4]);
        d.nbytes = static_cast<uint64_t>(l[5]);
    }
    stw_model *model = nullptr;
    stw_status st = stw_model_init(c_path.c_str(), &hp, descs.data(), n_tensors, &model);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_model_init");
        return 0;
    }
    return to_handle(model);
    STW_GUARD_END(env, 0)
}

JNIEXPORT jlong STW_JNI(modelInitFile)(JNIEnv *env, jclass, jbyteArray path) {
    STW_GUARD_BEGIN
    std::string c_path;
    if (!copy_c_string(env, path, "model path", c_path)) return 0;
    stw_model *model = nullptr;
    stw_status st = stw_model_init_file(c_path.c_str(), &model);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_model_init_file");
        return 0;
    }
    return to_handle(model);
    STW_GUARD_END(env, 0)
}

JNIEXPORT void STW_JNI(modelFree)(JNIEnv *, jclass, jlong model) { stw_model_free(from_handle<stw_model>(model)); }

JNIEXPORT void STW_JNI(modelHparams)(JNIEnv *env, jclass, jlong model, jintArray ints, jfloatArray floats) {
    if (!check_length(env, ints, kHparamInts, "hparams ints") || !check_length(env, floats, kHparamFloats, "hparams floats"))
        return;
    stw_hparams hp{};
    stw_status st = stw_model_hparams(from_handle<stw_model>(model), &hp);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_model_hparams");
        return;
    }
    jint hi[kHparamInts] = {hp.arch,      hp.n_layer,    hp.n_embd,     hp.n_ff,    hp.n_head,   hp.n_head_kv,
                            hp.head_dim_k, hp.head_dim_v, hp.n_vocab, hp.n_ctx_train, hp.rope_dim, hp.rope_type};
    jfloat hf[kHparamFloats] = {hp.rope_freq_base, hp.rms_eps};
    env->SetIntArrayRegion(ints, 0, kHparamInts, hi);
    env->SetFloatArrayRegion(floats, 0, kHparamFloats, hf);
}

JNIEXPORT jlong STW_JNI(modelWeightBytes)(JNIEnv *, jclass, jlong model) {
    return static_cast<jlong>(stw_model_weight_bytes(from_handle<stw_model>(model)));
}

JNIEXPORT jlong STW_JNI(kvBytesPerToken)(JNIEnv *, jclass, jlong model, jint kv_type) {
    return static_cast<jlong>(stw_kv_bytes_per_token(from_handle<stw_model>(model), kv_type));
}

JNIEXPORT jlong STW_JNI(kvPoolInit)(JNIEnv *env, jclass, jlong model, jint kv_type, jlong budget) {
    if (budget < 0) {
        throw_illegal_argument(env, "KV pool budget must be >= 0 bytes, got " + std::to_string(budget));
        return 0;
    }
    stw_kv_pool *pool = nullptr;
    stw_status st = stw_kv_pool_init(from_handle<stw_model>(model), kv_type, static_cast<uint64_t>(budget), &pool);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_kv_pool_init");
        return 0;
    }
    return to_handle(pool);
}

JNIEXPORT void STW_JNI(kvPoolFree)(JNIEnv *, jclass, jlong pool) { stw_kv_pool_free(from_handle<stw_kv_pool>(pool)); }

JNIEXPORT jlong STW_JNI(kvPoolBytes)(JNIEnv *, jclass, jlong pool) {
    return static_cast<jlong>(stw_kv_pool_bytes(from_handle<stw_kv_pool>(pool)));
}

JNIEXPORT jlong STW_JNI(kvPoolUsedBytes)(JNIEnv *, jclass, jlong pool) {
    return static_cast<jlong>(stw_kv_pool_used_bytes(from_handle<stw_kv_pool>(pool)));
}

JNIEXPORT jlong STW_JNI(seqInit)(JNIEnv *env, jclass, jlong pool, jint max_tokens) {
    stw_seq *seq = nullptr;
    stw_status st = stw_seq_init(from_handle<stw_kv_pool>(pool), max_tokens, &seq);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_seq_init");
        return 0;
    }
    return to_handle(seq);
}

JNIEXPORT void STW_JNI(seqFree)(JNIEnv *, jclass, jlong seq) { stw_seq_free(from_handle<stw_seq>(seq)); }

JNIEXPORT jint STW_JNI(seqLength)(JNIEnv *, jclass, jlong seq) { return stw_seq_length(from_handle<stw_seq>(seq)); }

JNIEXPORT void STW_JNI(seqTruncate)(JNIEnv *env, jclass, jlong seq, jint length) {
    stw_status st = stw_seq_truncate(from_handle<stw_seq>(seq), length);
    if (st != STW_STATUS_OK) throw_status(env, st, "stw_seq_truncate");
}

JNIEXPORT jlong STW_JNI(contextInit)(JNIEnv *env, jclass, jlong model, jint threads, jint batch, jint rows) {
    stw_context *ctx = nullptr;
    stw_status st = stw_context_init(from_handle<stw_model>(model), threads, batch, rows, &ctx);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_context_init");
        return 0;
    }
    return to_handle(ctx);
}

JNIEXPORT void STW_JNI(contextFree)(JNIEnv *, jclass, jlong ctx) { stw_context_free(from_handle<stw_context>(ctx)); }

JNIEXPORT jlong STW_JNI(contextWorkspaceBytes)(JNIEnv *, jclass, jlong ctx) {
    return static_cast<jlong>(stw_context_workspace_bytes(from_handle<stw_context>(ctx)));
}

// The Java side has checked the array lengths, but the glue re-checks them: a wrong length here would be a
// buffer overrun in native code, which must never happen whatever Java passes.
JNIEXPORT void STW_JNI(decode)(JNIEnv *env, jclass, jlong ctx, jint n_tokens, jintArray tokens, jlongArray seqs,
                               jbyteArray want_logits, jfloatArray logits_out, jint n_vocab) {
    STW_GUARD_BEGIN
    if (n_tokens <= 0) {
        throw_illegal_argument(env, "decode: n_tokens must be > 0, got " + std::to_string(n_tokens));
        return;
    }
    if (!check_length(env, tokens, n_tokens, "decode tokens") || !check_length(env, seqs, n_tokens, "decode sequences") ||
        !check_length(env, want_logits, n_tokens, "decode wantLogits"))
        return;
    std::vector<jint> tok(static_cast<size_t>(n_tokens));
    std::vector<jlong> seq_handles(static_cast<size_t>(n_tokens));
    std::vector<uint8_t> want(static_cast<size_t>(n_tokens));
    env->GetIntArrayRegion(tokens, 0, n_tokens, tok.data());
    env->GetLongArrayRegion(seqs, 0, n_tokens, seq_handles.data());
    env->GetByteArrayRegion(want_logits, 0, n_tokens, reinterpret_cast<jbyte *>(want.data()));
    size_t rows = 0;
    std::vector<stw_seq *> seq_ptrs(static_cast<size_t>(n_tokens));
    for (jsize i = 0; i < n_tokens; i++) {
        seq_ptrs[static_cast<size_t>(i)] = from_handle<stw_seq>(seq_handles[static_cast<size_t>(i)]);
        if (want[static_cast<size_t>(i)] != 0) rows++;
    }
    size_t n_out = rows * static_cast<size_t>(n_vocab > 0 ? n_vocab : 0);
    if (n_out > static_cast<size_t>(INT32_MAX)) {
        throw_illegal_argument(env, "decode: " + std::to_string(rows) + " logit rows of " + std::to_string(n_vocab) +
                                        " floats do not fit a Java array");
        return;
    }
    if (rows > 0 && !check_length(env, logits_out, static_cast<jsize>(n_out), "decode logitsOut")) return;
    std::vector<float> out(n_out);
    static_assert(sizeof(jint) == sizeof(int32_t), "jint is 32-bit");
    stw_status st = stw_decode(from_handle<stw_context>(ctx), n_tokens, reinterpret_cast<const int32_t *>(tok.data()),
                               seq_ptrs.data(), want.data(), n_out > 0 ? out.data() : nullptr);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_decode");
        return;
    }
    if (n_out > 0) env->SetFloatArrayRegion(logits_out, 0, static_cast<jsize>(n_out), out.data());
    STW_GUARD_END(env, )
}

JNIEXPORT jlong STW_JNI(samplerInit)(JNIEnv *env, jclass, jfloatArray floats, jint top_k, jint repeat_last_n, jlong seed,
                                      jint n_vocab) {
    if (!check_length(env, floats, kSamplerFloats, "sampler floats")) return 0;
    jfloat f[kSamplerFloats];
    env->GetFloatArrayRegion(floats, 0, kSamplerFloats, f);
    stw_sampler_params p{};
    p.temperature = f[0];
    p.top_p = f[1];
    p.min_p = f[2];
    p.repeat_penalty = f[3];
    p.top_k = top_k;
    p.repeat_last_n = repeat_last_n;
    p.seed = static_cast<uint64_t>(seed);
    stw_sampler *sampler = nullptr;
    stw_status st = stw_sampler_init(&p, n_vocab, &sampler);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_sampler_init");
        return 0;
    }
    return to_handle(sampler);
}

JNIEXPORT void STW_JNI(samplerFree)(JNIEnv *, jclass, jlong sampler) { stw_sampler_free(from_handle<stw_sampler>(sampler)); }

JNIEXPORT jint STW_JNI(samplerSample)(JNIEnv *env, jclass, jlong sampler, jfloatArray logits, jint offset, jint n_vocab,
                                       jintArray recent, jint n_recent) {
    STW_GUARD_BEGIN
    if (offset < 0 || n_vocab <= 0 || n_recent < 0) {
        throw_illegal_argument(env, "sample: offset " + std::to_string(offset) + ", n_vocab " + std::to_string(n_vocab) +
                                        ", n_recent " + std::to_string(n_recent) + " must be >= 0 (n_vocab > 0)");
        return -1;
    }
    if (logits == nullptr || static_cast<int64_t>(offset) + n_vocab > env->GetArrayLength(logits)) {
        throw_illegal_argument(env, "sample: a row of " + std::to_string(n_vocab) + " logits at offset " +
                                        std::to_string(offset) + " does not fit the logits array");
        return -1;
    }
    if (n_recent > 0 && !check_length(env, recent, n_recent, "sample recent tokens")) return -1;
    std::vector<float> row(static_cast<size_t>(n_vocab));
    env->GetFloatArrayRegion(logits, offset, n_vocab, row.data());
    std::vector<jint> rec(static_cast<size_t>(n_recent));
    if (n_recent > 0) env->GetIntArrayRegion(recent, 0, n_recent, rec.data());
    int32_t token = -1;
    stw_status st = stw_sampler_sample(from_handle<stw_sampler>(sampler), row.data(),
                                       reinterpret_cast<const int32_t *>(rec.data()), n_recent, &token);
    if (st != STW_STATUS_OK) {
        throw_status(env, st, "stw_sampler_sample");
        return -1;
    }
    return token;
    STW_GUARD_END(env, -1)
}

}  // extern "C"

package io.stowage.runtime.engine;

/** Turns a native status code and message into the typed Java exception; the JNI glue calls {@link #create}. */
final class NativeErrors {
    private NativeErrors() {}

    /** Called from native code (stowage_jni.cpp caches this method in JNI_OnLoad): keep the signature. */
    static Throwable create(int code, String message) {
        EngineStatus status = EngineStatus.fromCode(code);
        return switch (status) {
            case BAD_MODEL -> new ModelFormatException(message);
            case UNSUPPORTED -> new UnsupportedModelException(message);
            case BUDGET_EXCEEDED -> new BudgetExceededException(message);
            case INVALID_ARGUMENT -> new IllegalArgumentException(message);
            default -> new NativeEngineException(status, message + " (status " + status + ")");
        };
    }
}

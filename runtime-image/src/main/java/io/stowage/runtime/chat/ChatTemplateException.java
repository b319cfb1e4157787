package io.stowage.runtime.chat;

/** A chat template that cannot be compiled or rendered, or one that raised an exception itself ({@code raise_exception}). */
public class ChatTemplateException extends IllegalArgumentException {
    public ChatTemplateException(String message) {
        super(message);
    }
}

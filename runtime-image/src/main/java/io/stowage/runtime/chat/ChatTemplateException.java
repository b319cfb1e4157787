package io.stowage.runtime.chat;

/**
 * A chat template that cannot be compiled or rendered, or one that raised an exception itself ({@code
 * raise_exception}). The message is one line in the template's terms: Python type names, never Java or Jinjava
 * class names; the engine's own exception, when there is one, is the cause (for the server log).
 */
public class ChatTemplateException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final boolean causedByMessages;

    public ChatTemplateException(String message) {
        this(message, false, null);
    }

    public ChatTemplateException(String message, boolean causedByMessages, Throwable cause) {
        super(message, cause);
        this.causedByMessages = causedByMessages;
    }

    /**
     * True when the messages are what the template refused: it called {@code raise_exception} (e.g. roles that do
     * not alternate) or the rendered prompt grew past its bound. False when the template itself failed.
     */
    public boolean causedByMessages() {
        return causedByMessages;
    }
}

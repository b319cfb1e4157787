package io.stowage.runtime.engine;

/** A request for memory beyond an assigned budget (a KV pool with no free block, a sequence past its limit). */
public class BudgetExceededException extends NativeEngineException {
    private static final long serialVersionUID = 1L;

    public BudgetExceededException(String message) {
        super(EngineStatus.BUDGET_EXCEEDED, message);
    }
}

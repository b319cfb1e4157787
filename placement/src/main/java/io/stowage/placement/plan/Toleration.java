package io.stowage.placement.plan;

/**
 * A Kubernetes toleration. {@code operator} is Equal (default) or Exists; a null key with Exists
 * tolerates every taint; a null effect matches every effect.
 */
public record Toleration(String key, String operator, String value, String effect) {

    /** Kubernetes semantics: does this toleration tolerate {@code taint}? */
    public boolean tolerates(Taint taint) {
        if (effect != null && !effect.isEmpty() && !effect.equals(taint.effect())) {
            return false;
        }
        boolean exists = "Exists".equals(operator);
        if (key == null || key.isEmpty()) {
            return exists;
        }
        if (!key.equals(taint.key())) {
            return false;
        }
        return exists || (value == null ? "" : value).equals(taint.value());
    }
}

package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.MicroTime;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/** Writes core/v1 Events about LlmDeployments, once per distinct (object, reason, message). */
public final class EventRecorder {
    private static final Logger LOG = Logger.getLogger(EventRecorder.class);
    private static final int MAX_REMEMBERED = 100_000;

    /**
     * The API server's MicroTime (RFC 3339 with exactly six fractional digits, in UTC); it answers 400 to
     * {@code ISO_INSTANT}'s nine digits or to a time with no fraction.
     */
    private static final DateTimeFormatter MICRO_TIME =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'").withZone(ZoneOffset.UTC);

    /** The API server's Time (RFC 3339 in whole seconds, in UTC). */
    private static final DateTimeFormatter TIME =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss'Z'").withZone(ZoneOffset.UTC);

    private final KubernetesClient client;
    private final Clock clock;
    private final Map<String, Boolean> sent = new ConcurrentHashMap<>();
    private final AtomicBoolean failureLogged = new AtomicBoolean();

    public EventRecorder(KubernetesClient client, Clock clock) {
        this.client = client;
        this.clock = clock;
    }

    /** {@code t} as the API server's MicroTime, e.g. {@code 2026-12-05T23:58:08.123456Z}. */
    public static String microTime(Instant t) {
        return MICRO_TIME.format(t.truncatedTo(ChronoUnit.MICROS));
    }

    /** {@code t} as the API server's Time, e.g. {@code 2026-12-05T23:58:08Z}. */
    public static String time(Instant t) {
        return TIME.format(t.truncatedTo(ChronoUnit.SECONDS));
    }

    /** The API server's limit on an Event's message (with eventTime set), in UTF-8 bytes. */
    static final int MAX_NOTE_BYTES = 1024;

    /** {@code message} cut to {@link #MAX_NOTE_BYTES} UTF-8 bytes (never inside a character), ending in "...". */
    static String note(String message) {
        if (message.getBytes(java.nio.charset.StandardCharsets.UTF_8).length <= MAX_NOTE_BYTES) {
            return message;
        }
        StringBuilder b = new StringBuilder();
        int bytes = 0;
        for (int i = 0; i < message.length(); ) {
            int cp = message.codePointAt(i);
            int n = new String(Character.toChars(cp)).getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
            if (bytes + n > MAX_NOTE_BYTES - 3) {
                break;
            }
            b.appendCodePoint(cp);
            bytes += n;
            i += Character.charCount(cp);
        }
        return b.append("...").toString();
    }

    public void normal(HasMetadata about, String reason, String message) {
        record(about, "Normal", reason, message);
    }

    public void warning(HasMetadata about, String reason, String message) {
        record(about, "Warning", reason, message);
    }

    private void record(HasMetadata about, String type, String reason, String message) {
        String key = about.getMetadata().getUid() + "|" + about.getMetadata().getName() + "|" + reason + "|" + message;
        if (sent.putIfAbsent(key, Boolean.TRUE) != null) {
            return;
        }
        if (sent.size() > MAX_REMEMBERED) {
            sent.clear();
        }
        Instant at = clock.instant();
        String now = time(at);
        String msg = note(message);
        try {
            client.v1()
                    .events()
                    .inNamespace(about.getMetadata().getNamespace())
                    .resource(new EventBuilder()
                            .withNewMetadata()
                            .withGenerateName(about.getMetadata().getName() + ".")
                            .withNamespace(about.getMetadata().getNamespace())
                            .endMetadata()
                            .withNewInvolvedObject()
                            .withApiVersion(about.getApiVersion())
                            .withKind(about.getKind())
                            .withName(about.getMetadata().getName())
                            .withNamespace(about.getMetadata().getNamespace())
                            .withUid(about.getMetadata().getUid())
                            .endInvolvedObject()
                            .withType(type)
                            .withReason(reason)
                            .withMessage(msg)
                            .withFirstTimestamp(now)
                            .withLastTimestamp(now)
                            .withEventTime(new MicroTime(microTime(at)))
                            .withCount(1)
                            .withReportingComponent("stowage-operator")
                            .withReportingInstance("stowage-operator")
                            .withAction(reason)
                            .withNewSource("stowage-operator", null)
                            .build())
                    .create();
        } catch (KubernetesClientException e) {
            // Said once at WARN (a rejected or forbidden Event would otherwise leave `kubectl describe` empty with
            // no trace); every later failure at DEBUG, so that a lasting refusal does not flood the log.
            if (failureLogged.compareAndSet(false, true)) {
                LOG.warnf(
                        "could not record event %s on %s/%s (HTTP %d): %s; Events will be missing from kubectl"
                                + " describe until this is fixed (further failures are logged at DEBUG)",
                        reason,
                        about.getMetadata().getNamespace(),
                        about.getMetadata().getName(),
                        e.getCode(),
                        e.getMessage());
            } else {
                LOG.debugf(
                        "could not record event %s on %s/%s (HTTP %d): %s",
                        reason,
                        about.getMetadata().getNamespace(),
                        about.getMetadata().getName(),
                        e.getCode(),
                        e.getMessage());
            }
        }
    }
}

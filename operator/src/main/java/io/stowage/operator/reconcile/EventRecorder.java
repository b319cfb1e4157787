package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.MicroTime;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Clock;
import java.time.format.DateTimeFormatter;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/** Writes core/v1 Events about LlmDeployments, once per distinct (object, reason, message). */
public final class EventRecorder {
    private static final Logger LOG = Logger.getLogger(EventRecorder.class);
    private static final int MAX_REMEMBERED = 100_000;

    private final KubernetesClient client;
    private final Clock clock;
    private final Map<String, Boolean> sent = new ConcurrentHashMap<>();

    public EventRecorder(KubernetesClient client, Clock clock) {
        this.client = client;
        this.clock = clock;
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
        String now = DateTimeFormatter.ISO_INSTANT.format(clock.instant());
        String msg = message.length() > 1000 ? message.substring(0, 1000) + "..." : message;
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
                            .withEventTime(new MicroTime(now))
                            .withCount(1)
                            .withReportingComponent("stowage-operator")
                            .withReportingInstance("stowage-operator")
                            .withAction(reason)
                            .withNewSource("stowage-operator", null)
                            .build())
                    .create();
        } catch (KubernetesClientException e) {
            LOG.warnf(
                    "could not record event %s on %s: %s",
                    reason, about.getMetadata().getName(), e.getMessage());
        }
    }
}

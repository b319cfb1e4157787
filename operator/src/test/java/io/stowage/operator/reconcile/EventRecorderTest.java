package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Events carry the time formats a real API server accepts: MicroTime with six digits, Time in seconds. */
@EnableKubernetesMockClient(crud = true)
class EventRecorderTest {
    KubernetesClient client;

    /** metav1.MicroTime's wire format, RFC3339Micro: exactly six fractional digits, UTC. */
    static final String MICRO_TIME = "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$";

    @Test
    void microTimeHasExactlySixFractionalDigitsWhateverTheInstantsPrecision() {
        assertThat(EventRecorder.microTime(Instant.parse("2026-12-05T23:58:08.123456789Z")))
                .isEqualTo("2026-12-05T23:58:08.123456Z");
        assertThat(EventRecorder.microTime(Instant.parse("2026-12-05T23:58:08Z")))
                .isEqualTo("2026-12-05T23:58:08.000000Z");
        assertThat(EventRecorder.microTime(Instant.parse("2026-12-05T23:58:08.1Z")))
                .isEqualTo("2026-12-05T23:58:08.100000Z");
        assertThat(EventRecorder.time(Instant.parse("2026-12-05T23:58:08.999999999Z")))
                .isEqualTo("2026-12-05T23:58:08Z");
    }

    @Test
    void recordedEventCarriesAMicroTimeAndSecondTimestampsAndIsWrittenOncePerMessage() {
        Instant at = Instant.parse("2026-12-05T23:58:08.123456789Z");
        EventRecorder events = new EventRecorder(client, Clock.fixed(at, ZoneOffset.UTC));
        LlmDeployment d = new LlmDeployment("team-a", "chat", new LlmDeploymentSpec("https://h/m.gguf", 1));
        d.setMetadata(new ObjectMetaBuilder(d.getMetadata()).withUid("u-1").build());

        events.warning(d, "ModelUnreadable", "probe pod could not pull its image");
        events.warning(d, "ModelUnreadable", "probe pod could not pull its image");

        List<Event> written = client.v1().events().inNamespace("team-a").list().getItems();
        assertThat(written).hasSize(1);
        Event e = written.get(0);
        assertThat(e.getEventTime().getTime()).matches(MICRO_TIME).isEqualTo("2026-12-05T23:58:08.123456Z");
        assertThat(e.getFirstTimestamp()).isEqualTo("2026-12-05T23:58:08Z");
        assertThat(e.getLastTimestamp()).isEqualTo("2026-12-05T23:58:08Z");
        assertThat(e.getInvolvedObject().getUid()).isEqualTo("u-1");
        assertThat(e.getReportingComponent()).isEqualTo("stowage-operator");
    }

    @Test
    void aLongMessageIsCutToTheApiServers1024BytesNeverInsideACharacter() {
        String ascii = "x".repeat(5000);
        String cut = EventRecorder.note(ascii);
        assertThat(cut.getBytes(java.nio.charset.StandardCharsets.UTF_8)).hasSize(1024);
        assertThat(cut).endsWith("...");

        String wide = "é".repeat(1000); // two bytes each
        String cutWide = EventRecorder.note(wide);
        assertThat(cutWide.getBytes(java.nio.charset.StandardCharsets.UTF_8).length)
                .isLessThanOrEqualTo(1024);
        assertThat(cutWide).startsWith("é".repeat(510)).endsWith("...").doesNotContain("\uFFFD");

        assertThat(EventRecorder.note("short")).isEqualTo("short");
    }
}

package io.stowage.operator.model;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Where model sources appear inside a host pod. */
class SourceMountTest {
    @Test
    void aClaimIsMountedReadOnlyBelowSourceAndTheHostGetsTheFileInside() {
        SourceMount m = SourceMount.of("pvc://models/llm/a.gguf");
        assertThat(m.volume().getPersistentVolumeClaim().getClaimName()).isEqualTo("models");
        assertThat(m.volume().getPersistentVolumeClaim().getReadOnly()).isTrue();
        assertThat(m.volumeMount().getReadOnly()).isTrue();
        assertThat(m.mountPath()).isEqualTo("/source/" + m.volumeName());
        assertThat(m.podUri()).isEqualTo("file://" + m.mountPath() + "/llm/a.gguf");
        assertThat(SourceMount.of("pvc://models/other.gguf").volumeName()).isEqualTo(m.volumeName());
        assertThat(SourceMount.of("pvc://other/a.gguf").volumeName()).isNotEqualTo(m.volumeName());
    }

    @Test
    void aNodeDirectoryAppearsAtItsOwnPathUnlessItWouldCoverTheImage() {
        SourceMount m = SourceMount.of("file:///data/models/a.gguf");
        assertThat(m.volume().getHostPath().getPath()).isEqualTo("/data/models");
        assertThat(m.mountPath()).isEqualTo("/data/models");
        assertThat(m.podUri()).isEqualTo("file:///data/models/a.gguf");

        for (String covering : new String[] {"file:///a.gguf", "file:///tmp/a.gguf", "file:///opt/a.gguf"}) {
            SourceMount c = SourceMount.of(covering);
            assertThat(c.mountPath()).as(covering).startsWith("/source/");
            assertThat(c.podUri()).as(covering).isEqualTo("file://" + c.mountPath() + "/a.gguf");
        }
    }

    @Test
    void aPathInsideAPodIsNeverMountedFromTheNode() {
        // What a host records for a mounted source: mounting it as a node directory would be a hostPath that does
        // not exist there, and one that Pod Security restricted refuses.
        String inner = SourceMount.of("pvc://models/llm/a.gguf").podUri();
        assertThat(SourceMount.of(inner)).isNull();
        assertThat(SourceMount.hostUri(inner)).isEqualTo(inner);
    }

    @Test
    void remoteSourcesAreNotMounted() {
        for (String u : new String[] {"https://huggingface.co/x/a.gguf", "hf://x/y/a.gguf", "s3://b/a.gguf"}) {
            assertThat(SourceMount.of(u)).as(u).isNull();
            assertThat(SourceMount.hostUri(u)).isEqualTo(u);
        }
    }
}

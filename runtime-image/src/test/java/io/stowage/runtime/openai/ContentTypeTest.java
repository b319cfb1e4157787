package io.stowage.runtime.openai;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ContentTypeTest {
    @Test
    void onlyJsonInUtf8IsAccepted() {
        assertThat(OpenAiRoutes.contentTypeRefusal("application/json")).isNull();
        assertThat(OpenAiRoutes.contentTypeRefusal("application/JSON; charset=UTF-8"))
                .isNull();
        assertThat(OpenAiRoutes.contentTypeRefusal("application/json;charset=\"utf-8\""))
                .isNull();
        assertThat(OpenAiRoutes.contentTypeRefusal(null)).contains("no Content-Type");
        assertThat(OpenAiRoutes.contentTypeRefusal("text/plain"))
                .contains("'text/plain'")
                .contains("application/json");
        assertThat(OpenAiRoutes.contentTypeRefusal("multipart/form-data; boundary=x"))
                .contains("multipart/form-data");
        assertThat(OpenAiRoutes.contentTypeRefusal("application/x-www-form-urlencoded"))
                .isNotNull();
        assertThat(OpenAiRoutes.contentTypeRefusal("application/jsonp")).isNotNull();
        assertThat(OpenAiRoutes.contentTypeRefusal("application/json; charset=utf-16"))
                .contains("UTF-8");
        // a header as long as the client likes is quoted short
        assertThat(OpenAiRoutes.contentTypeRefusal("text/" + "x".repeat(100_000)))
                .hasSizeLessThan(300);
    }
}

# The Stowage operator image: a Quarkus fast-jar on a JRE, running as a non-root user.
#   docker build -t ghcr.io/stowage/operator:0.1.0 .
# The tag is the chart's appVersion (helm/stowage/Chart.yaml), which image.tag in values.yaml defaults to;
# docs/install.md builds, pushes and installs both images.
# Base images are build arguments (a mirror, a pinned digest): BUILD_IMAGE is the JDK that builds, BASE_IMAGE
# the JRE 21+ that runs (it needs sh, groupadd and useradd), e.g. --build-arg BASE_IMAGE=eclipse-temurin:21-jre.
ARG BUILD_IMAGE=eclipse-temurin:25-jdk
ARG BASE_IMAGE=eclipse-temurin:25-jre

# --- build ---------------------------------------------------------------------------------------
FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY mvnw pom.xml ./
COPY .mvn .mvn
COPY placement/pom.xml placement/
COPY host-api/pom.xml host-api/
COPY runtime-image/pom.xml runtime-image/
COPY operator/pom.xml operator/
COPY e2e/pom.xml e2e/
RUN ./mvnw -B -ntp -pl operator -am dependency:go-offline -DskipTests
COPY placement placement
COPY host-api host-api
COPY operator operator
COPY crds crds
RUN ./mvnw -B -ntp -pl operator -am package -DskipTests -Dspotless.check.skip=true -Dspotless.apply.skip=true

# --- run -----------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ENV LANGUAGE=en_US:en LC_ALL=C.UTF-8 \
    JAVA_OPTS_APPEND="-XX:MaxRAMPercentage=75 -Djava.util.logging.manager=org.jboss.logmanager.LogManager --add-opens java.base/java.lang=ALL-UNNAMED"
RUN groupadd --system --gid 10001 stowage && useradd --system --uid 10001 --gid 10001 --no-create-home stowage
WORKDIR /deployments
COPY --from=build --chown=10001:10001 /src/operator/target/quarkus-app/lib/ lib/
COPY --from=build --chown=10001:10001 /src/operator/target/quarkus-app/*.jar ./
COPY --from=build --chown=10001:10001 /src/operator/target/quarkus-app/app/ app/
COPY --from=build --chown=10001:10001 /src/operator/target/quarkus-app/quarkus/ quarkus/
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["sh", "-c", "exec java $JAVA_OPTS_APPEND -jar /deployments/quarkus-run.jar"]

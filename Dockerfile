# The Stowage operator image: a Quarkus fast-jar on a JRE 21+, running as a non-root user.
#
# Build the application first (any machine with JDK 21+; the jar is platform-neutral), then the image:
#   ./mvnw -B -ntp -pl operator -am package -DskipTests
#   docker build -t ghcr.io/stowage/operator:0.1.0 .
# The tag is the chart's appVersion (helm/stowage/Chart.yaml), which image.tag in values.yaml defaults to;
# docs/install.md builds, pushes and installs both images. The build runs no network step (`docker build
# --network none` works), and .dockerignore sends only the built application as the context.
#
# The base image is a build argument (a mirror, a pinned digest): any JRE 21+ with sh, groupadd and useradd, e.g.
# --build-arg BASE_IMAGE=eclipse-temurin:21-jre. The cluster e2e builds it on a Debian trixie root file system with
# openjdk-21-jre-headless made by debootstrap (e2e/cluster/project-images.sh).
ARG BASE_IMAGE=eclipse-temurin:25-jre
FROM ${BASE_IMAGE}
ENV LANGUAGE=en_US:en LC_ALL=C.UTF-8 \
    JAVA_OPTS_APPEND="-XX:MaxRAMPercentage=75 -Djava.util.logging.manager=org.jboss.logmanager.LogManager --add-opens java.base/java.lang=ALL-UNNAMED"
RUN groupadd --system --gid 10001 stowage && useradd --system --uid 10001 --gid 10001 --no-create-home stowage
WORKDIR /deployments
# Quarkus fast-jar layout: libraries first (they change least), then the application; owned by root, read-only to
# the operator's user.
COPY operator/target/quarkus-app/lib/ lib/
COPY operator/target/quarkus-app/quarkus-run.jar ./
COPY operator/target/quarkus-app/app/ app/
COPY operator/target/quarkus-app/quarkus/ quarkus/
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["sh", "-c", "exec java $JAVA_OPTS_APPEND -jar /deployments/quarkus-run.jar"]

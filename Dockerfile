# One build, one image per service (build targets edge-service, aggregator-streams, billing-sink,
# alert-notifier, init). Each service is a plain executable jar; configuration is by environment variables only.
#   docker build --target edge-service -t tokenmeter/edge-service .
FROM maven:3.9-eclipse-temurin-21 AS build
WORKDIR /src
COPY . .
RUN ./mvnw -B -ntp -DskipTests package \
 && mkdir -p /out \
 && cp edge-service/target/edge-service-*-all.jar /out/edge-service.jar \
 && cp aggregator-streams/target/aggregator-streams-*-all.jar /out/aggregator-streams.jar \
 && cp billing-sink/target/billing-sink-*-all.jar /out/billing-sink.jar \
 && cp alert-notifier/target/alert-notifier-*-all.jar /out/alert-notifier.jar \
 && cp billing-sink/target/billing-sink-*-all.jar /out/init.jar

FROM eclipse-temurin:21-jre AS runtime
RUN useradd --system --uid 10001 tokenmeter && mkdir -p /data && chown tokenmeter /data
USER tokenmeter
WORKDIR /app
ENV JAVA_TOOL_OPTIONS="-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError"

FROM runtime AS edge-service
COPY --from=build /out/edge-service.jar /app/service.jar
EXPOSE 8080
ENTRYPOINT ["java", "-jar", "/app/service.jar"]

FROM runtime AS aggregator-streams
COPY --from=build /out/aggregator-streams.jar /app/service.jar
EXPOSE 9465
ENTRYPOINT ["java", "-jar", "/app/service.jar"]

FROM runtime AS billing-sink
COPY --from=build /out/billing-sink.jar /app/service.jar
EXPOSE 9466
ENTRYPOINT ["java", "-jar", "/app/service.jar"]

FROM runtime AS alert-notifier
COPY --from=build /out/alert-notifier.jar /app/service.jar
ENTRYPOINT ["java", "-jar", "/app/service.jar"]

FROM runtime AS init
COPY --from=build /out/init.jar /app/init.jar
ENTRYPOINT ["java", "-cp", "/app/init.jar", "dev.tokenmeter.sink.ops.Init"]

# The bridge's container image: one static binary and the CA certificates, FROM scratch, so
# nothing is pulled from a registry and nothing but the bridge is inside (no shell).
# Build it with `make image` (scripts/image.sh), which stages both under bin/image/ first;
# .dockerignore keeps everything else out of the build context.
FROM scratch

ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="social-webhook-bridge" \
      org.opencontainers.image.description="Signed social-media webhooks into Kafka as Avro, and the reference consumers of those topics" \
      org.opencontainers.image.source="https://github.com/socialbridge/bridge" \
      org.opencontainers.image.documentation="https://github.com/socialbridge/bridge#readme" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

COPY bin/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/image/bridge /usr/local/bin/bridge
# Directories the unprivileged user owns: the working directory (the analytics consumer's
# SQLite file by default) and a temporary directory, which scratch lacks.
COPY --chown=65532:65532 bin/image/data/ /var/lib/bridge/
COPY --chown=65532:65532 bin/image/data/ /tmp/
WORKDIR /var/lib/bridge
USER 65532:65532

# 8080: the ingress (http.listen); 8081: the analytics dashboard (consumers.analytics.listen).
EXPOSE 8080 8081
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/bridge", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]

ENTRYPOINT ["/usr/local/bin/bridge"]
CMD ["serve", "--config", "/etc/bridge/bridge.yaml"]

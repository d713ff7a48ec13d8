# syntax=docker/dockerfile:1
# aforo-sidecar container image: Debian 12 (bookworm), built in a stage with the -dev packages and run
# from a slim stage holding only the runtime libraries, as a non-root user (uid/gid 10001).
#   docker build -t aforo-sidecar:0.1.0 .
#   docker run --rm -e AFORO_API_KEY=... -e AFORO_TENANT_ID=... aforo-sidecar:0.1.0
# The image also carries the Kong plugin (/usr/local/share/aforo/lua), so a Kong pod can copy the
# plugin of the same version (examples/kubernetes/). tests/ops/check_dockerfile.py checks this file.

FROM debian:bookworm AS build
WORKDIR /src
# The build dependency list has one home: scripts/install-deps.sh.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --build && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt ./
COPY cmake cmake
COPY daemon daemon
COPY lua lua
COPY config config
COPY examples/kubernetes/config/sidecar.yaml examples/kubernetes/config/sidecar.yaml
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DAFORO_BUILD_TESTS=OFF \
 && cmake --build /build \
 && DESTDIR=/out cmake --install /build --prefix /usr/local --strip \
 && /out/usr/local/bin/aforo-sidecar --version \
 && mkdir -p /out/usr/local/share/aforo/lua/kong/plugins /out/etc/aforo \
 && cp -r lua/kong/plugins/aforo-metering /out/usr/local/share/aforo/lua/kong/plugins/ \
 && cp config/sidecar.yaml /out/usr/local/share/aforo/sidecar.reference.yaml \
 && cp examples/kubernetes/config/sidecar.yaml /out/etc/aforo/sidecar.yaml

FROM debian:bookworm-slim AS runtime
# Runtime libraries only (what the build stage's -dev packages link against), CA certificates for the
# TLS connection to ingest, and curl for HEALTHCHECK and Kubernetes exec probes (the sidecar listens
# on loopback only, which kubelet httpGet probes cannot reach).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libboost-url1.81.0 libhiredis0.14 liblz4-1 libyaml-cpp0.7 \
      libssl3 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 aforo-sidecar \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/aforo-sidecar --no-create-home \
      --shell /usr/sbin/nologin aforo-sidecar \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/aforo-sidecar /var/lib/aforo-sidecar/buffer /run/aforo
COPY --from=build /out/ /
# Spool and catalog state: mount a persistent volume here.
VOLUME ["/var/lib/aforo-sidecar"]
USER 10001:10001
EXPOSE 8750
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "--max-time", "2", "-o", "/dev/null", "http://127.0.0.1:8750/healthz"]
# SIGTERM drains within server.shutdown_timeout (10s); give `docker stop -t` at least that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/aforo-sidecar"]
CMD ["--config", "/etc/aforo/sidecar.yaml"]

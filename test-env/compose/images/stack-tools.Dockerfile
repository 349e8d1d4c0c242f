# The stack's own programs (bookstore, traffic, collector, grpc-collector) for the public-image
# path of test-env/docker-compose.yaml. Build context: the repository root.
# (CI builds a FROM-scratch stand-in from the host's binaries instead:
# scripts/test-compose.sh.)
# 1.88: grpc-collector's Envoy protos (envoy-types 0.7.7) need it.
FROM rust:1.88.0-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p telemetry-stack --bins -p grpc-collector

FROM debian:12.11-slim
COPY --from=build /src/target/release/bookstore /src/target/release/traffic /src/target/release/collector \
     /src/target/release/grpc-collector /usr/local/bin/
USER 65534
CMD ["/usr/local/bin/bookstore", "--listen", "0.0.0.0:8080"]

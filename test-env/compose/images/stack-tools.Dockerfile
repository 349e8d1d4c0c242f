# The stack's own programs (bookstore, traffic, collector) for the public-image
# path of test-env/docker-compose.yaml. Build context: the repository root.
# (CI builds a FROM-scratch stand-in from the host's binaries instead:
# scripts/test-compose.sh.)
FROM rust:1.85.1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p telemetry-stack --bins

FROM debian:12.11-slim
COPY --from=build /src/target/release/bookstore /src/target/release/traffic /src/target/release/collector /usr/local/bin/
USER 65534
CMD ["/usr/local/bin/bookstore", "--listen", "0.0.0.0:8080"]

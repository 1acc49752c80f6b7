# Multi-stage build: dependencies are compiled in a layer of their own (cached until a
# manifest or Cargo.lock changes), then the crate; the final image holds the binary only.
# Every workspace member's manifest is copied (cargo reads the whole workspace), but only
# the operator package is built. hack/docker-check runs these cargo steps on exactly the
# files copied here (in CI).
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y musl-tools
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY bench/Cargo.toml bench/
RUN mkdir -p src bench/src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > bench/src/main.rs \
 && cargo build --release --locked -p kube-reloader --target x86_64-unknown-linux-musl \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked -p kube-reloader --target x86_64-unknown-linux-musl \
 && mkdir -p /out && cp target/x86_64-unknown-linux-musl/release/kube-reloader /out/

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kube-reloader /kube-reloader
USER 65532:65532
ENTRYPOINT ["/kube-reloader"]

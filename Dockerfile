# Multi-stage build: dependencies are compiled in a layer of their own (cached until
# Cargo.toml or Cargo.lock change), then the crate; the final image holds the binary only.
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y musl-tools
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked --target x86_64-unknown-linux-musl \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/kube-reloader /kube-reloader

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /kube-reloader /kube-reloader
USER 65532:65532
ENTRYPOINT ["/kube-reloader"]

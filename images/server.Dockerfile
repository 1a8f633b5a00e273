# The Codepod server: multi-stage, the runtime image holds one static-ish binary, the built
# site and CA certificates, and runs as an unprivileged user.
#
#   docker build -f images/server.Dockerfile -t REGISTRY/codepod-server:VERSION .
#
# Not built in this repository's CI (no container engine there): see docs/deploy.md.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown
WORKDIR /src
COPY . .
# The wasm-bindgen CLI must be exactly the version in Cargo.lock (not --locked: its own
# lockfile names a webpki-roots release the registry no longer serves; scripts/setup.sh).
RUN version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock) \
 && cargo install wasm-bindgen-cli --version "=$version"
# Monaco, xterm.js and wasm-opt (binaryen) come from npm, pinned by the lockfile.
RUN cd vendor && npm ci --no-audit --no-fund
# As scripts/lib.sh sets it: leptos reads it at compile time to name the /pkg files.
ENV CARGO_TARGET_DIR=/src/target \
    LEPTOS_OUTPUT_NAME=codepod
RUN mkdir -p target/debug \
 && scripts/build.sh --release --site-only \
 && cargo build --release --locked -p server --bin codepod \
 && cp target/debug/hash.txt target/release/hash.txt

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin codepod
COPY --from=build /src/target/release/codepod /src/target/release/hash.txt /opt/codepod/bin/
COPY --from=build /src/target/site /opt/codepod/site
ENV CODEPOD_SITE_DIR=/opt/codepod/site \
    CODEPOD_DATA_DIR=/var/lib/codepod \
    CODEPOD_LISTEN=0.0.0.0:3000 \
    CODEPOD_LOG_FORMAT=json \
    CODEPOD_RUNTIME=kube
RUN mkdir -p /var/lib/codepod && chown codepod:codepod /var/lib/codepod
USER 10001:10001
EXPOSE 3000
ENTRYPOINT ["/opt/codepod/bin/codepod"]

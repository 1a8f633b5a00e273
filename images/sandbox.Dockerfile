# A Codepod sandbox pod: the agent as the main process, bash, Python 3.11 with numpy,
# pandas and scipy, pip; an unprivileged user (uid 1000). The pod runs it with a read-only
# root filesystem: /workspace, /home/user, /tmp and /run/codepod are size-capped emptyDirs.
#
#   docker build -f images/sandbox.Dockerfile -t REGISTRY/codepod-sandbox:VERSION .
#
# Not built in this repository's CI (no container engine there): see docs/deploy.md.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# scripts/lib.sh first makes the patched crates the workspace names (docs/development.md).
RUN bash -c 'source scripts/lib.sh' \
 && cargo build --release --locked -p agent --bin codepod-agent

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      bash ca-certificates coreutils findutils fontconfig-config git less procps python3 python3-venv python3-pip vim \
 && rm -rf /var/lib/apt/lists/*
# The same environment the local runtime binds into its sandboxes, at the same path.
COPY sandbox/python-requirements.txt /tmp/requirements.txt
RUN python3 -m venv --system-site-packages /opt/codepod/python \
 && /opt/codepod/python/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
# plt.show() → the IDE's Plots pane (docs/architecture.md).
COPY sandbox/python/codepod_plots.py /opt/codepod/python/lib/python3.11/site-packages/codepod_plots.py
COPY --from=build /src/target/release/codepod-agent /usr/local/bin/codepod-agent
# pip's failures explained (the package index, docs/architecture.md).
COPY sandbox/pip-hint.sh /etc/profile.d/codepod-pip.sh
RUN useradd --uid 1000 --user-group --home-dir /home/user --shell /bin/bash user \
 && mkdir -p /workspace /home/user /run/codepod \
 && chown user:user /workspace /home/user /run/codepod
ENV PATH=/opt/codepod/python/bin:/usr/local/bin:/usr/bin:/bin \
    HOME=/home/user \
    LANG=C.UTF-8
USER 1000:1000
WORKDIR /workspace
ENTRYPOINT ["codepod-agent", "--socket", "/run/codepod/agent.sock", "--workspace", "/workspace", "--home", "/home/user"]

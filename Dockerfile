# agentd serve in a container (docs/api.md):
#   docker build -t agentd .
#   docker run -p 8080:8080 -e AGENTD_API_TOKEN=change-me -v agentd-data:/data agentd
# Build stage: Debian bookworm with the -dev packages; runtime: bookworm-slim with only the
# shared libraries, a non-root user, and the database on the /data volume.
FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        gcc libc6-dev make pkg-config liblua5.4-dev libjson-c-dev libevent-dev \
        libcurl4-openssl-dev libsqlite3-dev libpcre2-dev libncurses-dev libedit-dev libxml2-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY runtime runtime
COPY scripts scripts
# The README's build: `make` (scripts/deps.sh finds every -dev package above and installs
# nothing, then ./agentd is built).
RUN make -j"$(nproc)" && strip agentd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        liblua5.4-0 libjson-c5 libevent-2.1-7 libevent-pthreads-2.1-7 libcurl4 libsqlite3-0 libpq5 \
        libpcre2-8-0 libncursesw6 libedit2 libxml2 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data --shell /usr/sbin/nologin agentd \
    && install -d -o agentd -g agentd /data
COPY --from=build /src/agentd /usr/local/bin/agentd
COPY agents /opt/agentd/agents
COPY tools /opt/agentd/tools
WORKDIR /opt/agentd
USER agentd
VOLUME ["/data"]
EXPOSE 8080
ENV AGENTD_DB=/data/agentd.db
# 0.0.0.0 is not loopback: the server refuses to start without AGENTD_API_TOKEN.
ENTRYPOINT ["agentd", "serve", "--listen", "0.0.0.0:8080", "--agents", "/opt/agentd/agents"]

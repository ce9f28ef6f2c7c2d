# Shoal's TicTacFish demo node (every role; pick with --roles). Build:
#   docker build -t tictacfish .                          # Node 22 (the default)
#   docker build --build-arg NODE_MAJOR=24 -t tictacfish .
# Node 20 reached its end of life in April 2026: the image defaults to 22, a major CI does not run
# (CI tests 20 and keeps 22 working; see README). Pin the bases by digest in your own build
# (--build-arg BUILD_IMAGE=node:22-bookworm-slim@sha256:… RUNTIME_IMAGE=…@sha256:…).
ARG NODE_MAJOR=22
ARG BUILD_IMAGE=node:${NODE_MAJOR}-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot

# ── build: every dependency, native addons compiled, TypeScript built, then dev dependencies pruned
FROM ${BUILD_IMAGE} AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/shoal/package.json packages/shoal/
COPY packages/journal-sqlite/package.json packages/journal-sqlite/
COPY packages/journal-postgres/package.json packages/journal-postgres/
COPY apps/tictacfish/package.json apps/tictacfish/
COPY bench/package.json bench/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY packages packages
COPY apps/tictacfish apps/tictacfish
RUN npx tsc -b packages/shoal packages/journal-sqlite packages/journal-postgres \
  && npm prune --omit=dev --no-audit --no-fund \
  && rm -rf bench apps/tictacfish/test apps/tictacfish/bench packages/*/test

# ── runtime: production dependencies only, no shell, not root
FROM ${RUNTIME_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=65532:65532 /app /app
USER 65532:65532
# 7361: cluster (TCP and UDP), 8080: the game's HTTP API, 8558: management (/ready, /health, /metrics)
EXPOSE 7361/tcp 7361/udp 8080 8558
# Node itself is the entrypoint (distroless: /nodejs/bin/node), never `npm start`, which does not pass
# SIGTERM on: main.ts handles SIGTERM as a graceful leave (hand-over), then exits 0.
ENTRYPOINT ["/nodejs/bin/node", "--import", "tsx", "apps/tictacfish/src/node/main.ts"]
# Alone, one node with every role (its cluster address on loopback); Kubernetes passes --host $(POD_IP)
# and --dns (deploy/k8s). The journal is a SQLite file under /app/data unless --journal says otherwise.
CMD ["--roles", "gateway,players,lobby", "--host", "127.0.0.1", "--port", "7361", "--http", "8080", "--http-host", "0.0.0.0", "--management", "8558", "--management-host", "0.0.0.0"]

# syntax=docker/dockerfile:1
# Cairn: one image for every process. The entrypoint is node; the first argument picks the app:
#   docker build -t cairn:0.1.0 .
#   docker run --rm cairn:0.1.0 apps/gateway/dist/main.js --config /etc/cairn/cairn.config.json --id g1
#   (apps/consensus, apps/storage-node, apps/gateway, and apps/cli for `cairn`)
# Kubernetes manifests: deploy/ (docs/deploy.md).
#
# Node 24 LTS (maintenance LTS until 2028-04-30), pinned to an exact release. No
# registry was reachable when this was written, so the tag is not pinned by digest: resolve one
# with `docker buildx imagetools inspect node:24.21.0-bookworm-slim` and build with
# `--build-arg NODE_IMAGE=node:24.21.0-bookworm-slim@sha256:<digest>` (docs/deploy.md, "Images").
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV CI=true NX_DAEMON=false NX_NO_CLOUD=true
# The whole (dockerignored) tree: npm ci needs every workspace's package.json in place.
COPY . .
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
RUN npx nx run-many -t build --skip-nx-cache
# Runtime tree: production dependencies only; of each app and lib only package.json, dist/
# (without build info, source maps and declarations), any nested node_modules/ and the gateway's
# web console files (apps/gateway/ui, served at /ui with preact, htm and uplot from node_modules); no tools/
# (bench, chaos, e2e, sim, the local launcher) and no links to them.
RUN npm prune --omit=dev --no-audit --no-fund \
 && find apps libs -mindepth 2 -maxdepth 2 ! -name dist ! -name package.json ! -name node_modules ! -path apps/gateway/ui -exec rm -rf {} + \
 && find apps libs -path '*/dist/*' -type f \( -name '*.tsbuildinfo' -o -name '*.map' -o -name '*.d.ts' \) -delete \
 && rm -rf tools \
 && find node_modules -xtype l -delete

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="cairn" \
      org.opencontainers.image.description="Cairn replicated key-value store: consensus, storage-node, gateway, cli" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
# glibc malloc: give freed large Buffers back to the OS (the same as the local launcher's
# MALLOC_ENV in tools/cluster; why and the figures: docs/reliability.md, "Hostile clients").
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072
WORKDIR /app
# Owned by root and read-only to the process: the image is immutable, data lives in volumes.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/libs ./libs
COPY --from=build /app/apps ./apps
# uid/gid 1000 is the image's `node` user; numeric so that runAsNonRoot can verify it.
USER 1000:1000
# SIGTERM goes straight to node, whose shutdown hooks stop the process gracefully.
ENTRYPOINT ["node"]
CMD ["apps/cli/dist/main.js", "--help"]

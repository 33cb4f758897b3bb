# syntax=docker/dockerfile:1
# AIO Storage: one image for `aio-server` (default) and `aio-worker`.

# --- build: all dependencies, compile TypeScript to dist/ ---
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

# --- production dependencies only (native modules compiled here, where build tools exist) ---
FROM node:20-bookworm AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

# --- runtime ---
FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
  AIO_HOST=0.0.0.0 \
  AIO_PORT=8080 \
  AIO_DATA_DIR=/var/lib/aio/data \
  AIO_STORAGE_DIR=/var/lib/aio/storage
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
# Programs on PATH; the data and storage dirs exist (owned by `node`) so fresh named
# volumes mounted there take that ownership.
RUN ln -s /app/bin/aio-server /usr/local/bin/aio-server \
  && ln -s /app/bin/aio-worker /usr/local/bin/aio-worker \
  && ln -s /app/bin/aio /usr/local/bin/aio \
  && mkdir -p /var/lib/aio/data /var/lib/aio/storage \
  && chown -R node:node /var/lib/aio
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.AIO_PORT || 8080) + '/api/v1/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["aio-server"]

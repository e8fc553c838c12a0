# gemma3n-trickle runner image: Node 20 + ffmpeg (the sampler decodes with the ffmpeg CLI).
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc tsconfig.json ./
COPY bin ./bin
COPY src ./src
# The live viewer's browser side, bundled into dist/viewer-page/ by `prepare`.
COPY viewer ./viewer
COPY scripts/build-viewer.mjs ./scripts/build-viewer.mjs
# The CPU build of onnxruntime-node ships in the npm package; skip its CUDA download (nuget.org).
# A GPU image must fetch the CUDA provider instead: see the README ("In-process backend on a GPU").
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci --no-audit --no-fund && npm prune --omit=dev
# The in-process backend downloads/caches model files here; it must be writable by USER node.
# Mount a volume on it (compose: a named volume) so weights survive container restarts.
ENV NODE_ENV=production PORT=8000 HOST=0.0.0.0 MODEL_CACHE_DIR=/home/node/.cache/gemma3n-trickle
RUN mkdir -p /home/node/.cache/gemma3n-trickle && chown -R node:node /home/node/.cache
VOLUME ["/home/node/.cache/gemma3n-trickle"]
EXPOSE 8000
USER node
ENTRYPOINT ["node", "bin/gemma3n-trickle.js"]
CMD ["serve"]

# gemma3n-trickle runner image: Node 20 + ffmpeg (the sampler decodes with the ffmpeg CLI).
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc tsconfig.json ./
COPY bin ./bin
COPY src ./src
RUN npm ci --no-audit --no-fund && npm prune --omit=dev
ENV NODE_ENV=production PORT=8000 HOST=0.0.0.0
EXPOSE 8000
USER node
ENTRYPOINT ["node", "bin/gemma3n-trickle.js"]
CMD ["serve"]

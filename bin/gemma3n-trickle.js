#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` via the prepare script).
import { main } from '../dist/cli/index.js';

main(process.argv).catch((err) => {
  process.stderr.write(`gemma3n-trickle: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

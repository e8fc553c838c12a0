// Runs the CLI from src/ (through tsx) without a build: `node --import tsx scripts/cli-dev.ts <command> …`.
// Tests spawn this; the published bin runs the compiled dist/ instead.
import { main } from '../src/cli/index.js';

main(process.argv).catch((err: unknown) => {
  process.stderr.write(`gemma3n-trickle: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

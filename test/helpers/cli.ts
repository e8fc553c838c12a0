/**
 * How tests start the CLI from the sources (not the built dist/ the published bin runs): the node
 * arguments that run scripts/cli-dev with `args`. Under `npm test` the tests run from the run's
 * transpiled copy of the tree (scripts/run-tests.mjs), and so does the CLI child: plain JavaScript,
 * without paying tsx's start-up and transforms again in every child. A test file run directly with
 * `node --import tsx --test` gets the CLI through tsx, as before.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SHARED_MEDIA_DIR_ENV } from '../../src/media/test-source.js';

export function sourceCliArgs(...args: string[]): string[] {
  if (import.meta.url.endsWith('.js')) return [fileURLToPath(new URL('../../scripts/cli-dev.js', import.meta.url)), ...args];
  return ['--import', 'tsx', 'scripts/cli-dev.ts', ...args];
}

/**
 * XDG_CACHE_HOME for a `demo` child: under `npm test` one per run (in the run's shared cache dir), so
 * the demo and watch tests encode the test pattern and write the tiny model once between them (both
 * are written atomically); otherwise `own`.
 */
export function demoCacheHome(own: string): string {
  const shared = process.env[SHARED_MEDIA_DIR_ENV];
  return shared ? join(shared, 'xdg-cache') : own;
}

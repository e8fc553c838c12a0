/** `gemma3n-trickle --version` prints package.json's version and exits 0, from src/ and from the built bin. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { sourceCliArgs } from '../helpers/cli.js';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

describe('--version', () => {
  for (const [label, args] of [
    ['source CLI', sourceCliArgs('--version')],
    ['built bin', ['bin/gemma3n-trickle.js', '--version']],
    ['built bin, short flag', ['bin/gemma3n-trickle.js', '-V']],
  ] as const) {
    it(`prints the package.json version and exits 0 (${label})`, () => {
      const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), pkg.version);
    });
  }
});

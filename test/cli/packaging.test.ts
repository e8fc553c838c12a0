/**
 * Packaging promises: every package the code imports is declared in package.json (runtime code in
 * `dependencies`, so `npm install --omit=dev` still runs it; bench/, scripts/, test/ and viewer/ (the
 * page, bundled at build) may also use `devDependencies`), and the project's npm config does not make
 * npm warn on every command.
 * A package that arrives only as a dependency of a dependency can vanish on any upgrade of its parent.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};
const runtime = new Set(Object.keys(pkg.dependencies ?? {}));
const dev = new Set(Object.keys(pkg.devDependencies ?? {}));
const builtins = new Set(builtinModules);

function sources(root: string, out: string[] = []): string[] {
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (/\.(ts|mts|js|mjs|cjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Module specifiers in static imports/exports, side-effect imports, dynamic import() and require(). */
export function importSpecifiers(code: string): string[] {
  const text = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1] as string);
  return found;
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`; relative paths and builtins → undefined. */
function packageOf(spec: string): string | undefined {
  if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:')) return undefined;
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
  return builtins.has(name) ? undefined : name;
}

function undeclared(roots: string[], allowed: Set<string>): string[] {
  const missing: string[] = [];
  // This file's own sample snippet is data, not imports.
  for (const file of roots.flatMap((r) => sources(r)).filter((f) => !f.endsWith('packaging.test.ts'))) {
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      const name = packageOf(spec);
      if (name && !allowed.has(name)) missing.push(`${file}: ${spec}`);
    }
  }
  return missing;
}

describe('declared dependencies', () => {
  it('the import scanner sees every import form (checked on a sample)', () => {
    const sample = [
      "import { a } from 'alpha';",
      "import type { B } from '@scope/beta/sub';",
      "export * from 'gamma';",
      "import 'delta';",
      "const e = await import('epsilon');",
      "import { f } from './local.js';",
      "import {\n  g,\n  h,\n} from 'multi-line';",
      "spawn(node, ['--import', 'tsx', 'x.ts']);",
      '/* import { z } from "in-a-comment"; */',
    ].join('\n');
    assert.deepEqual(
      importSpecifiers(sample).map(packageOf).filter(Boolean).sort(),
      ['@scope/beta', 'alpha', 'delta', 'epsilon', 'gamma', 'multi-line'],
    );
  });

  it('everything src/ and bin/ import is in dependencies (not only devDependencies)', () => {
    assert.deepEqual(undeclared(['src', 'bin'], runtime), []);
  });

  it('everything bench/, scripts/, test/ and viewer/ (the page, bundled at build) import is in dependencies or devDependencies', () => {
    assert.deepEqual(undeclared(['bench', 'scripts', 'test', 'viewer'], new Set([...runtime, ...dev])), []);
  });
});

describe('npm config', () => {
  it('npm commands in this project print no config warning', () => {
    const r = spawnSync('npm', ['config', 'list'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /warn/i);
  });
});

describe('docker compose', () => {
  const compose = readFileSync('docker-compose.yml', 'utf8');

  it('pins vLLM to a release with the mixed-length audio batch fix (vllm#50958: v0.28.0 or later), not latest', () => {
    const m = /image:\s*vllm\/vllm-openai:v(\d+)\.(\d+)\.(\d+)\s*$/m.exec(compose);
    assert.ok(m, 'vllm image must be pinned to a vX.Y.Z tag');
    const [major, minor] = [Number(m[1]), Number(m[2])];
    assert.ok(major > 0 || minor >= 28, `vLLM v${m[1]}.${m[2]}.${m[3]} predates vllm#50958`);
  });

  it('bounds images and audio per prompt and starts the runner only once vLLM is healthy', () => {
    assert.match(compose, /--limit-mm-per-prompt=\{"image":8,"audio":\{"count":1,"length":480000\}\}/);
    assert.match(compose, /depends_on:\s*\n\s*vllm:\s*\n\s*condition:\s*service_healthy/);
  });
});

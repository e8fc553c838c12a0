import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

describe('test-source temp files', () => {
  it('a process that generated and split test streams leaves nothing in the temp dir when it exits', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'media-tmpcheck-'));
    try {
      const script = [
        "import { makeTestSegments, mediaCacheDir } from './test/helpers/media.ts';",
        'const segs = await makeTestSegments({ durationS: 1, fps: 10, width: 64, height: 36, gopS: 1, audio: "aac" });',
        'const dir = await mediaCacheDir();',
        'const { readdirSync } = await import("node:fs");',
        'process.stdout.write(JSON.stringify({ segs: segs.length, files: readdirSync(dir).length }));',
      ].join('\n');
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        env: { ...process.env, TMPDIR: tmp, GEMMA3N_TEST_MEDIA_DIR: '' },
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { segs: number; files: number };
      assert.ok(out.segs >= 1 && out.files >= 1, 'the child really made files in its cache dir');
      // tsx (the TypeScript loader, not ours) keeps its compile cache there.
      assert.deepEqual(readdirSync(tmp).filter((n) => !n.startsWith('tsx-')), [], 'temp dir empty after the child exited');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

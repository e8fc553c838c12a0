/**
 * Log format: JSON lines when the log's stream is a pipe, human-readable (pino-pretty) when it is a
 * terminal, LOG_FORMAT=json|pretty overriding either way. The terminal is a real pty from util-linux
 * `script`, so this is what a user at a shell sees.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const logModule = pathToFileURL(resolve('src/log.ts')).href;
const program =
  `const { childLogger } = await import(${JSON.stringify(logModule)});` +
  `childLogger('log-test').info({ answer: 42 }, 'hello from the log test');`;
const nodeArgs = ['--import', 'tsx', '--input-type=module', '-e', program];

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, out, err }));
  });
}

/** Runs node with stdout on a pseudo-terminal (`script -q -e -c CMD /dev/null`). */
function runOnTerminal(env: NodeJS.ProcessEnv) {
  const quoted = [process.execPath, ...nodeArgs].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return run('script', ['-q', '-e', '-c', quoted, '/dev/null'], env);
}

function jsonLine(out: string): Record<string, unknown> {
  const line = out.split(/\r?\n/).find((l) => l.trim().startsWith('{'));
  assert.ok(line, `no JSON line in: ${out}`);
  return JSON.parse(line) as Record<string, unknown>;
}

describe('log format', () => {
  it('writes one JSON object per line when stdout is a pipe', async () => {
    const r = await run(process.execPath, nodeArgs, { LOG_FORMAT: '' });
    assert.equal(r.code, 0, r.err);
    const rec = jsonLine(r.out);
    assert.equal(rec.msg, 'hello from the log test');
    assert.equal(rec.component, 'log-test');
    assert.equal(rec.answer, 42);
    assert.equal(rec.level, 30);
  });

  it('writes readable lines, not JSON, when stdout is a terminal', async () => {
    const r = await runOnTerminal({ LOG_FORMAT: '' });
    assert.equal(r.code, 0, r.err + r.out);
    // eslint-disable-next-line no-control-regex
    const text = r.out.replace(/\x1b\[[0-9;]*m/g, '');
    assert.match(text, /INFO: hello from the log test/);
    assert.match(text, /answer: 42/);
    assert.doesNotMatch(text, /"msg":/);
  });

  it('LOG_FORMAT=json keeps JSON on a terminal', async () => {
    const r = await runOnTerminal({ LOG_FORMAT: 'json' });
    assert.equal(r.code, 0, r.err + r.out);
    assert.equal(jsonLine(r.out).msg, 'hello from the log test');
  });

  it('LOG_FORMAT=pretty gives readable lines on a pipe', async () => {
    const r = await run(process.execPath, nodeArgs, { LOG_FORMAT: 'pretty' });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /INFO.*hello from the log test/);
    assert.doesNotMatch(r.out, /"msg":/);
  });

  it('refuses an unknown LOG_FORMAT with a message naming the allowed values', async () => {
    const r = await run(process.execPath, nodeArgs, { LOG_FORMAT: 'xml' });
    assert.notEqual(r.code, 0);
    assert.match(r.err, /LOG_FORMAT must be "json" or "pretty", got "xml"/);
  });
});

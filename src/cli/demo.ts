/**
 * `gemma3n-trickle demo`: the command and its flags. What it does (an embedded trickle server, the
 * runner, a real-time publisher of a test pattern, records printed live) is in demo-run.ts, imported
 * only when the command runs.
 */
import type { Command } from 'commander';
import { addBackendOptions, type ServeOptions } from './serve.js';

export interface DemoOptions extends ServeOptions {
  input?: string;
  /** Picture size of the generated test pattern (WxH). */
  patternSize?: string;
  tiny?: boolean;
  cycles?: string;
  duration?: string;
  prompt?: string;
  every?: string;
  maxFrames?: string;
  port?: string;
  tinyDir?: string;
  /** Also serve the live viewer page (src/viewer/) for the demo's stream; `viewer: <url>` goes to stderr. */
  watch?: boolean;
  watchPort?: string;
}

export function registerDemoCommand(program: Command): void {
  const cmd = program
    .command('demo')
    .description('Run everything locally (embedded trickle server + runner + publisher) and print records live')
    .option('--input <file>', 'media file to publish (default: a generated moving test pattern with a tone, looped)')
    .option('--pattern-size <WxH>', 'picture size of the generated test pattern (smaller costs less CPU to encode and decode)', '1280x720')
    .option('--tiny', 'use the generated tiny random-weight test model (offline; replies name the modalities)')
    .option('--cycles <n>', 'stop after N records')
    .option('--duration <s>', 'stop after S seconds')
    .option('--prompt <text>', 'prompt for the stream')
    .option('--every <s>', 'generate_every_s', '4')
    .option('--max-frames <n>', 'max_frames', '4')
    .option('--port <port>', 'control API port (default: ephemeral)', '0')
    .option('--watch', 'also serve the live viewer page (video + records + latency chart) and print its URL')
    .option('--watch-port <port>', 'viewer port with --watch (default: ephemeral)', '0');
  addBackendOptions(cmd).action(async (o: DemoOptions) => {
    const { demoCommand } = await import('./demo-run.js');
    await demoCommand(o);
  });
}

/**
 * `gemma3n-trickle watch`: the live viewer for a stream — a page on localhost that plays the stream's
 * output channel and shows its data-channel records, the prompt in force and a latency chart, fed
 * over SSE from the trickle data and events channels (src/viewer/server.ts). Channels are named the
 * way the orchestrator names them (`<stream>-out`, `<stream>-data`, `<stream>-events` under the
 * trickle base URL), or given one by one. `--runner` enables the page's prompt box (POST
 * /stream/params, with `--token` as the bearer token). Prints `viewer: <url>` on stderr and runs
 * until SIGINT/SIGTERM; logs go to stderr.
 */
import type { Command } from 'commander';
import { configureLogging, logConfigFrom, readSetting } from '../config/runtime.js';
import { ViewerError, startViewer, type ViewerChannels } from '../viewer/server.js';

export interface WatchOptions {
  trickle?: string;
  stream?: string;
  outputUrl?: string;
  dataUrl?: string;
  eventsUrl?: string;
  runner?: string;
  token?: string;
  port: string;
  host: string;
}

/** The channel URLs a `watch` invocation names, or a ViewerError saying what is missing. */
export function watchChannels(o: Pick<WatchOptions, 'trickle' | 'stream' | 'outputUrl' | 'dataUrl' | 'eventsUrl'>): ViewerChannels {
  if (Boolean(o.trickle) !== Boolean(o.stream) && !(o.outputUrl || o.dataUrl || o.eventsUrl)) {
    throw new ViewerError('watch_bad_options', '--trickle and --stream go together');
  }
  const base = o.trickle?.replace(/\/+$/, '');
  const named = (suffix: string): string | undefined => (base && o.stream ? `${base}/${o.stream}-${suffix}` : undefined);
  const channels: ViewerChannels = {
    output: o.outputUrl ?? named('out'),
    data: o.dataUrl ?? named('data'),
    events: o.eventsUrl ?? named('events'),
  };
  if (!channels.output && !channels.data && !channels.events) {
    throw new ViewerError('watch_bad_options', 'name the stream: --trickle <base-url> --stream <name>, or --output-url / --data-url / --events-url');
  }
  return channels;
}

function portArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ViewerError('watch_bad_options', `--port must be a whole number from 0 to 65535 (got "${v}")`);
  return n;
}

export function registerWatchCommand(program: Command): void {
  program
    .command('watch')
    .description('Serve a live viewer page on localhost: the stream\'s video beside the model\'s records')
    .option('--trickle <base-url>', 'trickle base URL, e.g. https://orch:8935/ai/trickle')
    .option('--stream <name>', 'stream (channel) name: plays <name>-out, shows <name>-data and <name>-events')
    .option('--output-url <url>', 'output (video) channel URL, instead of --trickle/--stream')
    .option('--data-url <url>', 'data channel URL, instead of --trickle/--stream')
    .option('--events-url <url>', 'events channel URL, instead of --trickle/--stream')
    .option('--runner <url>', 'runner control API URL: enables the prompt box (POST <url>/stream/params)')
    .option('--token <token>', 'bearer token for the runner control API (default: $API_TOKEN)')
    .option('--port <port>', 'viewer port (0 = any free one)', '0')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .action(async (o: WatchOptions) => {
      configureLogging(logConfigFrom(process.env), { fd: 2, defaultLevel: 'warn' });
      const channels = watchChannels(o);
      const token = o.token ?? (readSetting(process.env, 'apiToken') || undefined);
      const viewer = await startViewer({
        channels,
        port: portArg(o.port),
        host: o.host,
        ...(o.stream ? { streamName: o.stream } : {}),
        ...(o.runner ? { runnerUrl: o.runner } : {}),
        ...(token ? { runnerToken: token } : {}),
      });
      process.stderr.write(`viewer: ${viewer.url}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await viewer.close();
      process.exit(0);
    });
}

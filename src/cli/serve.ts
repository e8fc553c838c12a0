/**
 * `gemma3n-trickle serve`: the command and its flags. Flags win over environment variables, which win
 * over defaults; every flag and variable is declared, defaulted and validated by one schema
 * (src/config/runtime.ts). What the command does is in serve-run.ts, imported only when it runs, so
 * other commands (and `--help`) never load the backends, the pipeline or the HTTP server.
 */
import { Option, type Command } from 'commander';
import { flagOption, parseRuntimeConfig, type RuntimeFlags, type SettingKey } from '../config/runtime.js';

/** Flags of `serve` and `demo` as commander hands them over (strings; see src/config/runtime.ts). */
export interface ServeOptions extends RuntimeFlags {
  tiny?: boolean;
}

/** Adds the commander option for a schema setting: help text and env twin come from the schema. */
export function addSettingOption(cmd: Command, key: SettingKey): Command {
  const { flags, description } = flagOption(key);
  return cmd.addOption(new Option(flags, description));
}

/** Backend flags shared by `serve` and `demo`. */
export function addBackendOptions(cmd: Command): Command {
  for (const key of ['backend', 'modelId', 'modelDir', 'dtype', 'device', 'baseUrl'] as const) addSettingOption(cmd, key);
  return cmd;
}

export function registerServeCommand(program: Command): void {
  const cmd = program.command('serve').description('Run the runner: the PyTrickle-compatible control API on --port (default 8000)');
  for (const key of ['port', 'host', 'apiToken', 'capabilityCapacity', 'maxInFlight'] as const) addSettingOption(cmd, key);
  addBackendOptions(cmd).action(async (o: ServeOptions) => {
    // Settings first: a refused start (every problem listed at once) does not load the server, the
    // engine client and the metrics registry only to exit.
    const cfg = parseRuntimeConfig(process.env, o);
    const { runServe } = await import('./serve-run.js');
    await runServe(cfg);
  });
}

/**
 * Command-line entry: `gemma3n-trickle <command>`. Each subsystem registers its own commands.
 * `--version` (`-V`) prints the package.json version and exits 0.
 */
import { Command } from 'commander';
import { registerServeCommand } from './serve.js';
import { registerTrickleCommands } from './trickle.js';
import { registerModelCommands } from './model.js';
import { registerDemoCommand } from './demo.js';
import { registerWatchCommand } from './watch.js';
import { VERSION } from '../version.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program.name('gemma3n-trickle').description('Livepeer trickle runner that describes live streams with Gemma 3n');
  program.version(VERSION, '-V, --version', 'print the version and exit');
  registerServeCommand(program);
  registerTrickleCommands(program);
  registerModelCommands(program);
  registerDemoCommand(program);
  registerWatchCommand(program);
  await program.parseAsync(argv);
}

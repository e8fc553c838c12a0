/**
 * Command-line entry: `gemma3n-trickle <command>`. Each subsystem registers its own commands.
 */
import { Command } from 'commander';
import { registerServeCommand } from './serve.js';
import { registerTrickleCommands } from './trickle.js';
import { registerModelCommands } from './model.js';
import { registerDemoCommand } from './demo.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program.name('gemma3n-trickle').description('Livepeer trickle runner that describes live streams with Gemma 3n');
  registerServeCommand(program);
  registerTrickleCommands(program);
  registerModelCommands(program);
  registerDemoCommand(program);
  await program.parseAsync(argv);
}

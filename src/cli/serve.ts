import type { Command } from 'commander';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('Run the control API server')
    .action(() => {
      throw new Error('serve: not wired yet');
    });
}

/**
 * Model-related commands. `make-tiny-model <dir>` writes the random-weight test model used by tests,
 * the bench and offline demos (src/model/tiny-model.ts, imported only when the command runs).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { TINY_MODEL_LABEL } from '../model/defaults.js';

export function registerModelCommands(program: Command): void {
  program
    .command('make-tiny-model')
    .description(`Write ${TINY_MODEL_LABEL} into <dir> (Gemma 3n ONNX layout, for offline tests; replies only name the modalities it got)`)
    .argument('<dir>', 'output directory (created if missing)')
    .action(async (dir: string) => {
      const { makeTinyModel } = await import('../model/tiny-model.js');
      const out = resolve(dir);
      const t0 = performance.now();
      await makeTinyModel(out);
      process.stdout.write(`wrote random-weight test model to ${out} in ${Math.round(performance.now() - t0)} ms\n`);
    });
}

/**
 * `npm run bench -- <name>`: runs bench/<name>.ts (trickle, media, model, pipeline); no name runs those
 * four. `decoders` (ffmpeg CLI vs node-av, the media-decoding choice; node-av from NODE_AV_PATH), `streams`
 * (N streams in one runner process vs N single-stream processes; needs `npm run build`) and `content`
 * (content-aware cycles vs the fixed cadence on a generated 3-minute clip) run only when named. Each bench
 * prints its figures and the ratio against a baseline measured in the same run.
 */
// Benchmarks print their own figures; the modules' info logs would only bury them.
process.env.LOG_LEVEL ??= 'warn';

const defaults = ['trickle', 'media', 'model', 'pipeline'];
const names = [...defaults, 'decoders', 'streams', 'content'];
// Names come first; from the first `--option` on, everything is the benches' options (and their values).
const firstOption = process.argv.slice(2).findIndex((a) => a.startsWith('-'));
const wanted = process.argv.slice(2, firstOption < 0 ? undefined : 2 + firstOption);
const run = wanted.length > 0 ? wanted : defaults;
for (const name of run) {
  if (!names.includes(name)) {
    process.stderr.write(`unknown bench "${name}"; choose from ${names.join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(`\n=== bench: ${name} ===\n`);
  const mod = (await import(`./${name}.ts`)) as { run: (args: string[]) => Promise<void> };
  await mod.run(process.argv.slice(2).filter((a) => a !== name));
}

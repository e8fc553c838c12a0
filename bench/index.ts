/**
 * `npm run bench -- <name>`: runs bench/<name>.ts (trickle, media, model, pipeline); no name runs all.
 * Each bench prints its figures and the ratio against a baseline measured in the same run.
 */
const names = ['trickle', 'media', 'model', 'pipeline'];
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const run = wanted.length > 0 ? wanted : names;
for (const name of run) {
  if (!names.includes(name)) {
    process.stderr.write(`unknown bench "${name}"; choose from ${names.join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(`\n=== bench: ${name} ===\n`);
  const mod = (await import(`./${name}.ts`)) as { run: (args: string[]) => Promise<void> };
  await mod.run(process.argv.slice(2).filter((a) => a !== name));
}

// Rewrites the generated blocks of README.md (the parameter table) from the schema.
import { readFileSync, writeFileSync } from 'node:fs';
import { withParamsTable } from '../src/config/params-doc.js';

const path = new URL('../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = withParamsTable(before);
if (after !== before) writeFileSync(path, after);
process.stdout.write(after === before ? 'README.md up to date\n' : 'README.md parameter table regenerated\n');

// Rewrites the generated blocks of README.md (the parameter and configuration tables) from the schemas.
import { readFileSync, writeFileSync } from 'node:fs';
import { withParamsTable } from '../src/config/params-doc.js';
import { withConfigTables } from '../src/config/runtime-doc.js';

const path = new URL('../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = withConfigTables(withParamsTable(before));
if (after !== before) writeFileSync(path, after);
process.stdout.write(after === before ? 'README.md up to date\n' : 'README.md generated tables regenerated\n');

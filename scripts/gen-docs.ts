// Rewrites the generated docs from their sources: the README's parameter and configuration tables
// (src/config/params.ts, src/config/runtime.ts) and docs/error-codes.md (src/error-codes.ts).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { withParamsTable } from '../src/config/params-doc.js';
import { withConfigTables } from '../src/config/runtime-doc.js';
import { ERROR_CODES_DOC_PATH, renderErrorCodesDoc } from '../src/error-codes-doc.js';

function rewrite(rel: string, render: (before: string) => string): void {
  const path = new URL(`../${rel}`, import.meta.url);
  const before = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const after = render(before);
  if (after !== before) writeFileSync(path, after);
  process.stdout.write(after === before ? `${rel} up to date\n` : `${rel} regenerated\n`);
}

rewrite('README.md', (readme) => withConfigTables(withParamsTable(readme)));
rewrite(ERROR_CODES_DOC_PATH, () => renderErrorCodesDoc());

// Validates AsyncAPI documents with the official parser (@asyncapi/parser): prints each
// diagnostic as JSON, one a line, and exits 1 when one is an error. Usage: node asyncapi_check.mjs FILE...
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';

const parser = new Parser();
let failed = false;
for (const file of process.argv.slice(2)) {
  const { document, diagnostics } = await parser.parse(readFileSync(file, 'utf8'));
  for (const d of diagnostics) {
    console.log(JSON.stringify({ file, severity: d.severity, code: d.code, message: d.message, path: d.path }));
  }
  if (!document || diagnostics.some((d) => d.severity === 0)) failed = true;
}
process.exit(failed ? 1 : 0);

// Parses an AsyncAPI document with the official parser and exits 1 on any
// error-level diagnostic (printed one a line), 0 when the document parses.
// Usage: node parse-asyncapi.mjs docs/asyncapi.yaml
import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(file, 'utf8'), { source: file });
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of errors) {
  console.log(`${d.code}: ${d.message} at ${d.path.join('/')}`);
}
if (!document || errors.length > 0) {
  console.log(`${file}: ${errors.length} errors; the document does not parse`);
  process.exit(1);
}
console.log(`${file}: parsed, ${document.channels().length} channels, ${document.messages().length} messages`);

// Prints the console's initial-route JavaScript, gzipped: the entry chunk,
// its static imports, and the first route's lazy chunk (/orders) with its
// own. web/console_test.go checks the same figure against the budget.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const dir = new URL("../dist/console/", import.meta.url);
const manifest = JSON.parse(readFileSync(new URL("manifest.json", dir), "utf8"));
const seen = new Set();
const walk = (key) => {
  const c = manifest[key];
  if (!c || seen.has(c.file)) return;
  seen.add(c.file);
  for (const i of c.imports ?? []) walk(i);
};
walk("index.html");
const shell = [...seen];
walk("src/views/Orders.tsx");
let total = 0;
for (const f of seen) {
  const gz = gzipSync(readFileSync(new URL(f, dir)), { level: 9 }).length;
  total += gz;
  console.log(`${(gz / 1024).toFixed(1).padStart(7)} KB  ${f}${shell.includes(f) ? "" : "  (route /orders)"}`);
}
const budget = 120 * 1024;
console.log(`initial route JS: ${(total / 1024).toFixed(1)} KB gzipped (budget ${budget / 1024} KB)`);
if (total > budget) process.exit(1);

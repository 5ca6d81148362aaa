// Copies the demo's static files next to the compiled scripts in dist/.
import { copyFileSync, mkdirSync } from "node:fs";
mkdirSync("dist/demo", { recursive: true });
for (const f of ["index.html", "style.css"]) copyFileSync(`demo/${f}`, `dist/demo/${f}`);

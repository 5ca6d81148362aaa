// The console's build: web/console → web/dist/console (committed, embedded
// by `tradewind serve`, served at /). Vitest runs test/ in happy-dom.
import { defaultClientConditions } from "vite";
import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";
import { fileURLToPath } from "node:url";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here("."),
  base: "/",
  plugins: [react()],
  // @tradewind/client (the web/client workspace) is bundled from its
  // TypeScript source: its "tradewind-source" export condition.
  resolve: { conditions: ["tradewind-source", ...defaultClientConditions] },
  build: {
    outDir: here("../dist/console"),
    emptyOutDir: true,
    target: "es2022",
    // Hashed names under /assets/ are served immutable; no name starts
    // with "_" or "." (go:embed would skip it).
    assetsDir: "assets",
    // manifest.json: which chunks each entry and route loads (the size
    // test reads it; it is not served).
    manifest: "manifest.json",
    rollupOptions: {
      output: {
        entryFileNames: "assets/[name]-[hash].js",
        chunkFileNames: "assets/c-[name]-[hash].js",
        assetFileNames: "assets/[name]-[hash][extname]",
      },
    },
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev`: proxy the API and the WebSocket to a `make run`.
    proxy: {
      "/v1": { target: "http://127.0.0.1:8080", ws: true },
    },
  },
  test: {
    environment: "happy-dom",
    include: ["test/**/*.test.{ts,tsx}"],
  },
});

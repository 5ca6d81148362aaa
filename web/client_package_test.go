package web_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tradewind/tradewind/schemas"
)

// consumerTS is a stranger's TypeScript using the installed package: it
// must type-check with strict NodeNext settings, and the @ts-expect-error
// line fails the compile if the package's types were lost (an any would
// accept the wrong brand, leaving the directive unused).
const consumerTS = `import { CloseCode, NotificationClient, customerId, orderId, type Notification, type OrderId } from "@tradewind/client";

const order: OrderId = orderId("0b6f5c1e-8a44-4a4e-9a43-1f0f7e3f9d10");
const seen: string[] = [];
const client = new NotificationClient({
  url: "wss://shop.example/v1/ws",
  token: async () => "a JWT",
  channels: ["user", ` + "`order.${order}`" + `],
  onNotification: (n: Notification) => {
    const title: string = n.event.data.title;
    seen.push(` + "`${n.channel} ${n.seq} ${title}`" + `);
  },
});
// @ts-expect-error a CustomerId is not an OrderId
const wrong: OrderId = customerId("c-1");
export { client, wrong, seen };
export const authFailed: 4001 = CloseCode.AuthFailed;
`

// consumerJS imports the installed package in Node.js and uses it without
// a network (Node 20 has no WebSocket; start is never called).
const consumerJS = `const m = await import("@tradewind/client");
const mem = new Map();
const storage = { getItem: (k) => mem.get(k) ?? null, setItem: (k, v) => void mem.set(k, v) };
const c = new m.NotificationClient({ token: () => "t", storage });
if (typeof m.NotificationClient !== "function" || c.lastSeq("user") !== 0 || m.CloseCode.AuthFailed !== 4001) throw new Error("unexpected exports");
if (m.orderId("0b6f5c1e-8a44-4a4e-9a43-1f0f7e3f9d10") !== "0b6f5c1e-8a44-4a4e-9a43-1f0f7e3f9d10") throw new Error("orderId");
console.log("imported @tradewind/client");
`

// TestClientPackageWorksOutsideTheRepository packs web/client as it would
// be published (npm pack runs its prepack build into web/client/dist,
// which git ignores), installs the tarball offline into a fresh project
// in a temporary directory, type-checks a TypeScript consumer against it
// and imports it in Node.js.
func TestClientPackageWorksOutsideTheRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("npm pack test skipped in -short mode")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on PATH: the @tradewind/client package test skipped", tool)
		}
	}
	tsc, err := filepath.Abs(filepath.Join("node_modules", "typescript", "bin", "tsc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tsc); err != nil {
		t.Skip("web/node_modules missing (run npm ci in web/): the @tradewind/client package test skipped")
	}
	if v, ok := nodeVersion(); !ok {
		t.Skipf("node %s is older than 20.19: the @tradewind/client package test skipped", v)
	}
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(dir string, name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		// A private npm cache: nothing is read from or written to the user's.
		cmd.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(tmp, "npm-cache"),
			"npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false", "NO_COLOR=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s in %s: %v\n%s%s", name, strings.Join(args, " "), dir, err, out, stderr.String())
		}
		return string(out)
	}

	out := run("client", "npm", "pack", "--json", "--pack-destination", tmp)
	var packed []struct {
		Name, Version, Filename string
		Files                   []struct{ Path string }
		Dependencies            map[string]string
	}
	if err := json.Unmarshal([]byte(out), &packed); err != nil || len(packed) != 1 {
		t.Fatalf("npm pack --json: %v\n%s", err, out)
	}
	p := packed[0]
	if p.Name != "@tradewind/client" || p.Version != schemas.Version {
		t.Fatalf("packed %s@%s, want @tradewind/client@%s (schemas.Version)", p.Name, p.Version, schemas.Version)
	}
	var files []string
	for _, f := range p.Files {
		files = append(files, f.Path)
	}
	for _, want := range []string{"package.json", "dist/tradewind.js", "dist/tradewind.d.ts", "dist/events.gen.d.ts"} {
		if !slices.Contains(files, want) {
			t.Errorf("the tarball lacks %s: %v", want, files)
		}
	}
	for _, f := range files {
		if strings.Contains(f, "node_modules") || strings.HasPrefix(f, "tsconfig") {
			t.Errorf("the tarball holds %s, which is not for consumers", f)
		}
	}

	app := filepath.Join(tmp, "app")
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(app, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(app, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package.json", `{"name": "a-shop", "private": true, "type": "module"}`+"\n")
	write("tsconfig.json", `{"compilerOptions": {"target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
  "lib": ["ES2022", "DOM"], "types": [], "strict": true, "noEmit": true}, "files": ["main.ts"]}`+"\n")
	write("main.ts", consumerTS)
	// --offline: the package has no dependencies, so nothing is fetched.
	run(app, "npm", "install", "--offline", "--ignore-scripts", filepath.Join(tmp, p.Filename))
	if _, err := os.Stat(filepath.Join(app, "node_modules", "@tradewind", "client", "dist", "tradewind.js")); err != nil {
		t.Fatalf("installed package: %v", err)
	}
	run(app, "node", tsc, "-p", "tsconfig.json")
	if got := run(app, "node", "--input-type=module", "-e", consumerJS); !strings.Contains(got, "imported @tradewind/client") {
		t.Fatalf("node: %q", got)
	}
}

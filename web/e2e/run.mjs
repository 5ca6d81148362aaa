// End-to-end check of the demo page in headless Chromium, driven by
// web/e2e_test.go over stdin/stdout:
//   1. open the page, wait until connected, place an order, see its
//      notification appear;
//   2. print "restart" and wait for "go" on stdin (the test restarts the
//      WebSocket server meanwhile);
//   3. wait until reconnected, place another order, see it appear once,
//      in order; print "PASS <json>" or "FAIL <reason>".
// Usage: node e2e/run.mjs <page url>   (CHROMIUM overrides /usr/bin/chromium)
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const url = process.argv[2];
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once("line", resolve));
const fail = (why) => { console.log(`FAIL ${why}`); process.exit(1); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-extensions", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`[page] ${m.text()}`));
  await page.goto(url);
  const open = () => page.waitForSelector('#status[data-state="open"]', { timeout: 20000 });
  const seqs = () => page.$$eval("#list li", (els) => els.map((e) => Number(e.dataset.seq)));
  await open();
  await page.click("#place");
  await page.waitForFunction(() => document.querySelectorAll("#list li").length >= 1, null, { timeout: 20000 });
  console.log("restart");
  if ((await nextLine()) !== "go") fail("no go from the test");
  // The page notices the restart (close 1012) and reconnects by itself.
  await page.waitForSelector('#status:not([data-state="open"])', { timeout: 20000 }).catch(() => {});
  await open();
  await page.click("#place");
  await page.waitForFunction(() => document.querySelectorAll("#list li").length >= 2, null, { timeout: 20000 });
  await page.waitForTimeout(500); // a duplicate would arrive now, if there were one
  const got = await seqs();
  if (got.length !== 2 || got[0] !== 2 || got[1] !== 1) fail(`notifications shown ${JSON.stringify(got)}, want [2,1] (newest first)`);
  const titles = await page.$$eval("#list li strong", (els) => els.map((e) => e.textContent));
  console.log(`PASS ${JSON.stringify({ seqs: got, titles })}`);
} catch (e) {
  fail(String(e).split("\n")[0]);
} finally {
  await browser.close();
}
process.exit(0);

// End-to-end check of the console in headless Chromium, driven by
// web/console_e2e_test.go over stdin/stdout:
//   1. as a customer, open /orders, place an order, and watch its row turn
//      "confirmed" live (WebSocket); see it in the inbox; screenshot;
//      resume after a dropped socket without a gap; mute order.confirmed,
//      and the test's next confirmation never shows (the test answers
//      "placed <muted order> <next order>");
//   2. as an operator, open /ops, print "stream", and measure long tasks
//      (PerformanceObserver "longtask") and frames (requestAnimationFrame)
//      while the test streams notifications into ops.orders; the test
//      answers "sent N"; wait until the feed counted N; screenshot;
//   3. as the operator, on SKU-1's product page, upload a PNG and see its
//      thumbnail (lazy, async, srcset), and see a renamed executable
//      refused;
//   4. print "PASS <json figures>" or "FAIL <reason>".
// Usage: node e2e/console.mjs <base url> <customer token> <ops token> <screenshot dir>
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { readFile } from "node:fs/promises";
import { crc32, deflateSync } from "node:zlib";

/** A w×h opaque RGB PNG with a gradient. */
function png(w, h) {
  const rows = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const o = y * (w * 3 + 1);
    for (let x = 0; x < w; x++) rows.set([x & 255, y & 255, 120], o + 1 + x * 3);
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(rows)), chunk("IEND", Buffer.alloc(0))]);
}

const [base, customer, ops, shots] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once("line", resolve));
const fail = (why) => {
  console.log(`FAIL ${why}`);
  process.exit(1);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-extensions", "--no-first-run"],
});
const figures = {};
try {
  // 1. A customer places an order and watches it confirm.
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.on("console", (m) => console.error(`[customer] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[customer] page error: ${e.message}`));
  // The customer's WebSocket goes through a route the test can cut.
  let offline = false;
  const sockets = [];
  await page.routeWebSocket(/\/v1\/ws$/, (ws) => {
    if (offline) {
      ws.close({ code: 1013, reason: "e2e: offline" });
      return;
    }
    ws.connectToServer();
    sockets.push(ws);
  });
  await page.goto(`${base}/orders#token=${customer}`);
  await page.waitForSelector('#conn[data-state="open"]', { timeout: 30000 });
  await page.waitForSelector("table.orders", { timeout: 30000 });
  // The first POST /v1/orders reaches the gateway but its answer is lost
  // (a network error for the page): the retry must carry the same
  // Idempotency-Key and get the stored 202 replayed.
  const keys = [];
  let replayed = null;
  await page.route(/\/v1\/orders$/, async (route) => {
    const req = route.request();
    if (req.method() !== "POST") return route.continue();
    keys.push(req.headers()["idempotency-key"]);
    const res = await route.fetch();
    if (keys.length === 1) return route.abort("connectionreset");
    replayed = res.headers()["idempotent-replayed"] ?? "false";
    return route.fulfill({ response: res });
  });
  const t0 = Date.now();
  await page.click("#place");
  const placed = await page.waitForSelector("[data-placed]", { timeout: 30000 });
  const id = await placed.getAttribute("data-placed");
  figures.placedMs = Date.now() - t0;
  await page.unroute(/\/v1\/orders$/);
  figures.idempotencyKeys = keys;
  figures.replayed202 = replayed;
  if (keys.length !== 2 || keys[0] !== keys[1] || replayed !== "true") fail(`retry after a network error: keys ${JSON.stringify(keys)}, Idempotent-Replayed ${replayed}`);
  await page.waitForSelector(`tr[data-order="${id}"][data-status="confirmed"]`, { timeout: 60000 });
  figures.confirmedLiveMs = Date.now() - t0;
  figures.order = id;
  await page.screenshot({ path: `${shots}/console-orders.png` });

  // Infinite scroll: keyset pages fetched as the end of the table shows.
  await page.waitForFunction(() => {
    window.scrollTo(0, document.body.scrollHeight);
    return Number(document.querySelector(".sentinel")?.dataset.pages) >= 3;
  }, null, { timeout: 30000, polling: 250 });
  figures.rowsAfterScroll = await page.$$eval("tr[data-order]", (els) => els.length);

  // The order's saga timeline.
  await page.click(`tr[data-order="${id}"] a`);
  await page.waitForSelector('.timeline li[data-step="orders.confirmed"]', { timeout: 30000 });
  figures.timeline = await page.$$eval(".timeline li", (els) => els.map((e) => e.dataset.step));

  await page.click('a[href="/notifications"]');
  await page.waitForSelector(`#inbox li[data-kind="order.confirmed"]`, { timeout: 30000 });
  figures.inboxSize = await page.$$eval("#inbox li", (els) => els.length);

  // Reconnect and lose nothing: cut the socket, keep it cut while the
  // test places an order and it is confirmed, then let it reconnect.
  const seqs = () => page.$$eval("#inbox li", (els) => els.map((e) => Number(e.dataset.seq)));
  const before = (await seqs()).length;
  offline = true;
  for (const ws of sockets.splice(0)) await ws.close({ code: 1012, reason: "e2e: drop" });
  await page.waitForSelector('#conn:not([data-state="open"])', { timeout: 30000 });
  console.log("offline");
  if ((await nextLine()) !== "online") fail("no 'online' from the test");
  offline = false;
  await page.waitForSelector('#conn[data-state="open"]', { timeout: 60000 });
  await page.waitForFunction((n) => document.querySelectorAll("#inbox li").length >= n + 2, before, { timeout: 30000 });
  const after = await seqs();
  const gapFree = after.every((q, i) => q === after.length - i);
  if (!gapFree) fail(`inbox after reconnect not 1..n without gap or repeat: ${JSON.stringify(after.slice(0, 10))}…`);
  figures.inboxBeforeDrop = before;
  figures.inboxAfterReconnect = after.length;

  // Mute a type and receive none of it: uncheck order.confirmed (a PUT of
  // the preferences); the test places an order, waits until it is
  // confirmed and the notifier has handled every event, then places
  // another. Once the second order's "placed" is in the inbox, the first
  // one's confirmation must not be, and the inbox is still 1..n.
  const muteBox = '#preferences input[data-kind="order.confirmed"]';
  const setPreference = async () => {
    const put = page.waitForResponse((r) => r.url().endsWith("/v1/notifications/preferences") && r.request().method() === "PUT", { timeout: 30000 });
    await page.click(muteBox);
    const res = await put;
    if (res.status() !== 200) fail(`PUT preferences: ${res.status()} ${await res.text()}`);
    return (await res.json()).muted_kinds;
  };
  await page.waitForSelector(`${muteBox}:checked`, { timeout: 30000 });
  figures.mutedKinds = await setPreference();
  await page.waitForSelector(`${muteBox}:not(:checked)`, { timeout: 30000 });
  console.log("muted");
  const [word, mutedOrder, nextOrder] = String(await nextLine()).split(" ");
  if (word !== "placed") fail(`no 'placed' from the test: ${word}`);
  await page.waitForSelector(`#inbox li[data-kind="order.placed"] a[href="/orders/${nextOrder}"]`, { timeout: 30000 });
  figures.mutedConfirmations = await page.$$eval(`#inbox li[data-kind="order.confirmed"] a[href="/orders/${mutedOrder}"]`, (els) => els.length);
  figures.mutedOrderPlaced = await page.$$eval(`#inbox li[data-kind="order.placed"] a[href="/orders/${mutedOrder}"]`, (els) => els.length);
  const afterMute = await seqs();
  figures.mutedGapFree = afterMute.every((q, i) => q === afterMute.length - i);
  await setPreference(); // notify about confirmations again
  await page.waitForSelector(`${muteBox}:checked`, { timeout: 30000 });

  // Cancel the confirmed order: the saga refunds it and the row turns
  // "cancelled" live.
  await page.click('a[href="/orders"]');
  await page.click(`tr[data-order="${id}"] button`);
  await page.waitForSelector(`tr[data-order="${id}"][data-status="cancelled"]`, { timeout: 60000 });
  figures.cancelledLive = true;

  // Catalog: autocomplete, keyboard choice, ranked results.
  await page.click('a[href="/catalog"]');
  await page.fill("#catalog-search", "Ki");
  await page.waitForSelector('li[role="option"]', { timeout: 30000 });
  await page.press("#catalog-search", "ArrowDown");
  await page.press("#catalog-search", "Enter");
  await page.waitForSelector("#products li", { timeout: 30000 });
  figures.search = await page.$$eval("#products li strong", (els) => els.map((e) => e.textContent));

  // 2. An operator watches the ops feed under a stream of notifications.
  const opsPage = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  opsPage.on("console", (m) => console.error(`[ops] ${m.text()}`));
  opsPage.on("pageerror", (e) => console.error(`[ops] page error: ${e.message}`));
  await opsPage.addInitScript(() => {
    const perf = (window.__perf = { longest: 0, longTasks: 0, frames: 0, measuring: false, tasks: [], maxScriptMs: 0, scriptMs: 0, longestFrame: null });
    new PerformanceObserver((list) => {
      if (!perf.measuring) return;
      for (const e of list.getEntries()) {
        perf.longTasks++;
        perf.longest = Math.max(perf.longest, e.duration);
        perf.tasks.push(Math.round(e.duration));
      }
    }).observe({ type: "longtask" });
    // Long animation frames say how much of a long frame was script (our
    // work) and how much was waiting for the CPU.
    try {
      new PerformanceObserver((list) => {
        if (!perf.measuring) return;
        for (const e of list.getEntries()) {
          const script = (e.scripts ?? []).reduce((s, x) => s + x.duration, 0);
          perf.maxScriptMs = Math.max(perf.maxScriptMs, script);
          perf.scriptMs += script;
          // What the longest frame was: its scripts (who called them, in
          // which function), their forced layouts, and the render after.
          if (!perf.longestFrame || e.duration > perf.longestFrame.ms) {
            const tail = (u) => String(u ?? "").split("/").pop();
            perf.longestFrame = {
              ms: Math.round(e.duration), blockingMs: Math.round(e.blockingDuration ?? 0), scriptMs: Math.round(script),
              renderMs: e.renderStart ? Math.round(e.startTime + e.duration - e.renderStart) : 0,
              styleLayoutMs: e.styleAndLayoutStart ? Math.round(e.startTime + e.duration - e.styleAndLayoutStart) : 0,
              scripts: [...(e.scripts ?? [])].sort((a, b) => b.duration - a.duration).slice(0, 4).map((x) => ({
                ms: Math.round(x.duration), invoker: x.invoker, fn: x.sourceFunctionName, src: tail(x.sourceURL),
                forcedLayoutMs: Math.round(x.forcedStyleAndLayoutDuration ?? 0),
              })),
            };
          }
        }
      }).observe({ type: "long-animation-frame" });
    } catch {}
    const tick = () => {
      if (perf.measuring) perf.frames++;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  // Analytics first: the chart, its table, its CSV; the roll-up and the pivot.
  await opsPage.goto(`${base}/analytics#token=${ops}`);
  await opsPage.waitForSelector("#sales-chart canvas", { timeout: 30000 });
  await opsPage.click("#toggle-table");
  await opsPage.waitForSelector("#sales-table tbody tr", { timeout: 30000 });
  figures.salesRows = await opsPage.$$eval("#sales-table tbody tr", (els) => els.length);
  // The CSV button downloads the API's CSV (fetched with the token).
  const [download] = await Promise.all([opsPage.waitForEvent("download", { timeout: 30000 }), opsPage.click("#csv")]);
  const csv = await readFile(await download.path(), "utf8");
  figures.salesCsvHeader = csv.split("\r\n")[0];
  // The category roll-up (indented bars, then its table) and the pivot.
  await opsPage.waitForSelector("#rollup-chart li", { timeout: 30000 });
  figures.rollup = await opsPage.$$eval("#rollup-chart li", (els) => els.map((li) => `${li.dataset.depth} ${li.querySelector(".name").textContent}`));
  await opsPage.click("#toggle-rollup");
  await opsPage.waitForSelector("#rollup-table tbody tr", { timeout: 30000 });
  figures.rollupRows = await opsPage.$$eval("#rollup-table tbody tr", (els) => els.length);
  await opsPage.waitForSelector("#pivot-table tbody tr", { timeout: 30000 });
  figures.pivotRows = await opsPage.$$eval("#pivot-table tbody tr", (els) => els.length);

  // Product images: an operator uploads a PNG on SKU-1's page and sees its
  // thumbnail; a Windows executable renamed x.png is refused.
  await opsPage.goto(`${base}/catalog?sku=SKU-1#token=${ops}`);
  await opsPage.waitForSelector("#product h1", { timeout: 30000 });
  await opsPage.setInputFiles("#image-file", { name: "kite.png", mimeType: "image/png", buffer: png(400, 240) });
  await opsPage.click("#upload-image");
  await opsPage.waitForSelector("#product-images img[srcset]", { timeout: 30000 });
  const img = await opsPage.$eval("#product-images img", (e) => ({
    src: e.getAttribute("src"), srcset: e.getAttribute("srcset"), loading: e.getAttribute("loading"),
    decoding: e.getAttribute("decoding"), sizes: e.getAttribute("sizes"),
  }));
  await opsPage.waitForFunction(() => {
    const e = document.querySelector("#product-images img");
    return e && e.complete && e.naturalWidth > 0;
  }, null, { timeout: 30000 });
  figures.thumbnail = img;
  const exe = Buffer.concat([Buffer.from("MZ\x90\x00\x03\x00\x00\x00", "latin1"), Buffer.alloc(512)]);
  await opsPage.setInputFiles("#image-file", { name: "x.png", mimeType: "image/png", buffer: exe });
  await opsPage.click("#upload-image");
  await opsPage.waitForSelector("#upload-error", { timeout: 30000 });
  figures.imageRefused = await opsPage.textContent("#upload-error");
  if (shots) await opsPage.screenshot({ path: `${shots}/console-product.png` });

  await opsPage.click('a[href="/ops"]');
  await opsPage.waitForSelector('#conn[data-state="open"]', { timeout: 30000 });
  await opsPage.waitForSelector("#feed", { timeout: 30000 });
  // A dead letter: show it, replay it, see it gone.
  await opsPage.waitForSelector("#dlq tr[data-dlq]", { timeout: 30000 });
  await opsPage.click("#dlq tr[data-dlq] button:text('Show')");
  await opsPage.waitForSelector(".dlq-detail", { timeout: 30000 });
  await opsPage.click("#dlq tr[data-dlq] button:text('Replay')");
  await opsPage.waitForFunction(() => document.querySelectorAll("#dlq tr[data-dlq]").length === 0, null, { timeout: 30000 });
  figures.replayed = true;
  await opsPage.waitForSelector("text=Feature flags", { timeout: 30000 });
  if (await opsPage.isVisible(".dlq-detail")) fail("the replayed dead letter's detail is still shown");
  await opsPage.evaluate(() => window.scrollTo(0, 0));
  await opsPage.waitForFunction(() => [...document.querySelectorAll("#consumers td")].some((td) => td.textContent === "orders-commands"), null, { timeout: 30000 });
  await opsPage.waitForTimeout(1000); // let the view settle (and its first queries answer)
  // CPU time of the page's main thread (ThreadTime) and of its renderer
  // (ProcessTime), which a loaded machine does not inflate the way it
  // inflates wall-clock task durations.
  const cdp = await opsPage.context().newCDPSession(opsPage);
  await cdp.send("Performance.enable");
  const cpu = async () => {
    const { metrics } = await cdp.send("Performance.getMetrics");
    const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
    return { thread: m.ThreadTime ?? 0, script: m.ScriptDuration ?? 0, layout: (m.LayoutDuration ?? 0) + (m.RecalcStyleDuration ?? 0) };
  };
  // The machine's noise floor: the same page, idle, for 5 s.
  await opsPage.evaluate(() => (window.__perf.measuring = true));
  await opsPage.waitForTimeout(5000);
  const idle = await opsPage.evaluate(() => {
    const p = window.__perf;
    const out = { longest: p.longest, longTasks: p.longTasks, fps: p.frames / 5, longestFrame: p.longestFrame };
    Object.assign(p, { longest: 0, longTasks: 0, frames: 0, tasks: [], maxScriptMs: 0, scriptMs: 0, longestFrame: null });
    return out;
  });
  figures.idleLongestTaskMs = idle.longest;
  figures.idleLongTasks = idle.longTasks;
  figures.idleFps = idle.fps;
  figures.idleLongestFrame = idle.longestFrame;
  const c0 = await cpu();
  if (process.env.CONSOLE_PROFILE) {
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.start");
  }
  // CONSOLE_TRACE=file: a Chromium trace of the stream (chrome://tracing,
  // or the DevTools Performance panel); its tasks carry both wall-clock
  // (dur) and thread CPU time (tdur), which tells a long task of work
  // from one of waiting for a core.
  if (process.env.CONSOLE_TRACE) {
    await browser.startTracing(opsPage, { categories: ["toplevel", "devtools.timeline", "disabled-by-default-devtools.timeline", "v8", "blink"] });
  }
  const s0 = Date.now();
  console.log("stream");
  const sent = /^sent (\d+)$/.exec(await nextLine());
  if (!sent) fail("no 'sent N' from the test");
  const want = Number(sent[1]);
  await opsPage.waitForFunction((n) => Number(document.getElementById("feed-total")?.textContent) >= n, want, { timeout: 30000, polling: 200 });
  const elapsed = (Date.now() - s0) / 1000;
  const c1 = await cpu();
  if (process.env.CONSOLE_PROFILE) {
    const { profile } = await cdp.send("Profiler.stop");
    (await import("node:fs")).writeFileSync(process.env.CONSOLE_PROFILE, JSON.stringify(profile));
  }
  if (process.env.CONSOLE_TRACE) (await import("node:fs")).writeFileSync(process.env.CONSOLE_TRACE, await browser.stopTracing());
  figures.mainThreadCpuS = Number((c1.thread - c0.thread).toFixed(2));
  figures.scriptS = Number((c1.script - c0.script).toFixed(2));
  figures.styleLayoutS = Number((c1.layout - c0.layout).toFixed(2));
  const perf = await opsPage.evaluate(() => {
    window.__perf.measuring = false;
    return { ...window.__perf };
  });
  figures.streamed = want;
  figures.received = Number(await opsPage.textContent("#feed-total"));
  figures.feedRowsInDom = await opsPage.$$eval(".feed-row", (els) => els.length);
  figures.seconds = Number(elapsed.toFixed(1));
  figures.longestTaskMs = perf.longest;
  figures.longTasks = perf.longTasks;
  figures.fps = Number((perf.frames / elapsed).toFixed(1));
  figures.longTaskMs = perf.tasks;
  figures.maxScriptMsInALongFrame = Math.round(perf.maxScriptMs);
  figures.scriptMsInLongFrames = Math.round(perf.scriptMs);
  figures.longestFrame = perf.longestFrame;
  figures.flushes = await opsPage.evaluate(() => window.tradewindLive?.flushes ?? 0);
  figures.publishes = await opsPage.evaluate(() => window.tradewindLive?.publishes ?? 0);
  await opsPage.screenshot({ path: `${shots}/console-ops.png` });
  console.log(`PASS ${JSON.stringify(figures)}`);
} catch (e) {
  fail(`${String(e).split("\n")[0]} ${JSON.stringify(figures)}`);
} finally {
  await browser.close();
}
process.exit(0);

// The demo page: shows a user's live notifications and places test orders.
import { NotificationClient } from "../client/tradewind.js";
const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
const status = $("status");
const list = $("list");
const place = $("place");
const who = $("who");
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) {
    localStorage.setItem("tradewind.token", fromHash);
    history.replaceState(null, "", location.pathname); // keep the token out of the address bar
}
tokenInput.value = localStorage.getItem("tradewind.token") ?? "";
let client = null;
function subjectOf(token) {
    try {
        const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
        return payload.sub ?? "";
    }
    catch {
        return "";
    }
}
function show(n) {
    const d = n.event.data;
    const li = document.createElement("li");
    li.dataset.seq = String(n.seq);
    li.dataset.kind = d.kind;
    const title = document.createElement("strong");
    title.textContent = d.title;
    const body = document.createElement("div");
    body.textContent = d.body;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `#${n.seq} · ${d.kind} · ${new Date(n.event.time ?? Date.now()).toLocaleTimeString()}`;
    li.append(title, body, meta);
    list.prepend(li);
}
function connect() {
    const token = tokenInput.value.trim();
    if (!token) {
        status.textContent = "paste a token first";
        return;
    }
    localStorage.setItem("tradewind.token", token);
    client?.stop();
    list.replaceChildren();
    const user = subjectOf(token);
    who.textContent = user ? `for ${user}` : "";
    // Per-user seq keys; start from 0 on this page so the inbox is shown whole.
    const storageKey = `tradewind.seq.${user}.${Date.now()}`;
    client = new NotificationClient({
        token: () => tokenInput.value.trim(),
        storageKey,
        onNotification: show,
        onState: (s, detail) => {
            status.dataset.state = s;
            status.textContent = detail ? `${s}: ${detail}` : s;
            place.disabled = s !== "open";
        },
        onError: (code, message) => {
            status.textContent = `${code}: ${message}`;
        },
    });
    client.start();
}
// The demo's product (web.DemoSKU): priced by the catalog, never by the page.
const demoSKU = "SKU-1";
// order places a test order through the gateway with the user's token, as
// a storefront would: the gateway prices it from the catalog.
function order(token) {
    return fetch("/v1/orders", {
        method: "POST",
        headers: {
            Authorization: `Bearer ${token}`,
            "Content-Type": "application/json",
            "Idempotency-Key": crypto.randomUUID(),
        },
        body: JSON.stringify({ currency: "EUR", lines: [{ sku: demoSKU, quantity: 1 + Math.floor(Math.random() * 3) }] }),
    });
}
async function placeOrder() {
    place.disabled = true;
    const token = tokenInput.value.trim();
    try {
        let res = await order(token);
        if (res.status === 422 && (await res.clone().json()).type?.endsWith("/unknown-sku")) {
            // A fresh development system: put the demo product in the catalog
            // (POST /demo/seed exists in development mode only) and try again
            // once the catalog has it.
            const seeded = await fetch("/demo/seed", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
            if (seeded.ok) {
                for (let i = 0; i < 10 && res.status === 422; i++) {
                    await new Promise((r) => setTimeout(r, 500));
                    res = await order(token);
                }
            }
        }
        if (!res.ok)
            status.textContent = `order refused: ${res.status} ${await res.text()}`;
    }
    finally {
        place.disabled = status.dataset.state !== "open";
    }
}
$("connect").addEventListener("click", connect);
place.addEventListener("click", () => void placeOrder());
if (tokenInput.value)
    connect();

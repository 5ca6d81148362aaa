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
async function placeOrder() {
    place.disabled = true;
    try {
        const res = await fetch("/demo/orders", {
            method: "POST",
            headers: { Authorization: `Bearer ${tokenInput.value.trim()}`, "Content-Type": "application/json" },
            body: JSON.stringify({ sku: "SKU-1", quantity: 1 + Math.floor(Math.random() * 3) }),
        });
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

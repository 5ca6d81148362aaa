import { describe, expect, it } from "vitest";
import { ApiError, command, placeOrder, uploadImage } from "../src/api";

const accepted = (id: string) =>
  new Response(JSON.stringify({ status: "accepted", id, command_id: "cmd", type: "t", position: "COMMANDS:1", location: `/v1/orders/${id}` }), {
    status: 202,
    headers: { "Content-Type": "application/json" },
  });

/** A fetch that answers from a script and records every request's headers. */
function scripted(...answers: (() => Response)[]) {
  const calls: Headers[] = [];
  const f = (async (_url: RequestInfo | URL, init?: RequestInit) => {
    calls.push(new Headers(init?.headers));
    const a = answers[calls.length - 1];
    if (!a) throw new Error("unexpected request");
    return a();
  }) as typeof fetch;
  return { f, calls };
}

const noDelay = () => 0;

describe("command", () => {
  it("retries a network error with the same Idempotency-Key", async () => {
    const { f, calls } = scripted(
      () => {
        throw new TypeError("Failed to fetch");
      },
      () => accepted("o-1"),
    );
    const acc = await placeOrder("tok", "c-1", [{ sku: "SKU-1", quantity: 1, unit_price: 1250 }], { fetch: f, delay: noDelay });
    expect(acc.id).toBe("o-1");
    expect(calls).toHaveLength(2);
    expect(calls[0]!.get("Idempotency-Key")).toMatch(/^[0-9a-f-]{36}$/);
    expect(calls[1]!.get("Idempotency-Key")).toBe(calls[0]!.get("Idempotency-Key"));
    expect(calls[0]!.get("Authorization")).toBe("Bearer tok");
  });

  it("retries 503 and 409-in-flight with the same key", async () => {
    const problem = (status: number) => () => new Response(JSON.stringify({ title: "busy" }), { status, headers: { "Retry-After": "1" } });
    const { f, calls } = scripted(problem(503), problem(409), () => accepted("o-2"));
    await command("/v1/orders", {}, "tok", { fetch: f, delay: noDelay });
    expect(new Set(calls.map((h) => h.get("Idempotency-Key"))).size).toBe(1);
    expect(calls).toHaveLength(3);
  });

  it("does not retry a refusal, and says why", async () => {
    const { f, calls } = scripted(() => new Response(JSON.stringify({ title: "Invalid request body", detail: "/lines: too few" }), { status: 422 }));
    const err = await command("/v1/orders", {}, "tok", { fetch: f, delay: noDelay }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(422);
    expect((err as ApiError).message).toBe("/lines: too few");
    expect(calls).toHaveLength(1);
  });

  it("uses a new key for a new command", async () => {
    const { f, calls } = scripted(() => accepted("a"), () => accepted("b"));
    await command("/v1/orders", {}, "tok", { fetch: f });
    await command("/v1/orders", {}, "tok", { fetch: f });
    expect(calls[0]!.get("Idempotency-Key")).not.toBe(calls[1]!.get("Idempotency-Key"));
  });

  it("gives up after the attempts, with the network error", async () => {
    const fail = () => {
      throw new TypeError("Failed to fetch");
    };
    const { f, calls } = scripted(fail, fail, fail);
    await expect(command("/v1/orders", {}, "tok", { fetch: f, attempts: 3, delay: noDelay })).rejects.toThrow("Failed to fetch");
    expect(calls).toHaveLength(3);
  });
});

describe("uploadImage", () => {
  it("sends the file as the multipart field image, and surfaces a 415's detail", async () => {
    let body: BodyInit | null | undefined;
    let url = "";
    const f = (async (u: RequestInfo | URL, init?: RequestInit) => {
      url = String(u);
      body = init?.body;
      return new Response(
        JSON.stringify({ type: "https://tradewind.dev/problems/unsupported-image-type", title: "Unsupported image type", status: 415,
          detail: "not a JPEG, PNG or WebP image: the content is application/octet-stream" }),
        { status: 415, headers: { "Content-Type": "application/problem+json" } },
      );
    }) as typeof fetch;
    const err = await uploadImage("tok", "SKU 1", new Blob(["MZ"]), "x.png", f).catch((e: unknown) => e);
    expect(url).toBe("/v1/products/SKU%201/images");
    expect(body).toBeInstanceOf(FormData);
    expect((body as FormData).get("image")).toBeInstanceOf(Blob);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(415);
    expect((err as ApiError).message).toContain("JPEG, PNG or WebP");
  });
});

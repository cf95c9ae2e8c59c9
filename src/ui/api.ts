// The page's only way out: same-origin JSON to the dashboard process, which relays each call to
// one admin API request. Actions are POSTs carrying the session's CSRF token.
const csrf = document.querySelector('meta[name="nodecert-csrf"]')?.getAttribute("content") ?? "";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function parse<T>(r: Response): Promise<T> {
  const text = await r.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError(r.status, "invalid-response", `HTTP ${r.status}: ${text.slice(0, 200)}`);
  }
  if (!r.ok) {
    const b = body as { error?: string; reason?: string; rule?: string };
    throw new ApiError(r.status, b.error ?? "error", `${b.reason ?? `HTTP ${r.status}`}${b.rule ? ` (rule ${b.rule})` : ""}`);
  }
  return body as T;
}

export async function getJson<T>(path: string): Promise<T> {
  return parse<T>(await fetch(path, { credentials: "same-origin", headers: { accept: "application/json" } }));
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  return parse<T>(await fetch(path, { method: "POST", credentials: "same-origin", headers: { "content-type": "application/json", "x-nodecert-csrf": csrf }, body: JSON.stringify(body) }));
}

// The page's one fetch layer: every request goes through `request`, which adds the bearer token.

const TOKEN_KEY = "xtreaming.token";

/** An API call that failed: `status` 0 means no answer (network, timeout); `detail` is the API's words. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

/** A `?token=` in the address is kept (localStorage) and removed from the address bar and history. */
export function adoptTokenFromUrl() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given === null) return;
  setToken(given.trim());
  url.searchParams.delete("token");
  window.history.replaceState(null, "", url);
}

/** The API's words for an error: every error answer is `{detail, errors}` with `detail` a sentence (naming
 * each field refused, for a request refused by validation); anything else (a proxy's page) is shown cut. */
export function detailOf(data, text) {
  const detail = data && typeof data === "object" ? data.detail : undefined;
  if (typeof detail === "string") return detail;
  return (text || "").slice(0, 300);
}

/** JSON request to the coordinator; resolves to the decoded answer (null for 204), rejects with ApiError. */
export async function request(method, path, body, { timeoutMs = 8000 } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  let text;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      cache: "no-store",
    });
    text = await response.text();
  } catch {
    throw new ApiError(0, null);
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, detailOf(data, text));
  return data;
}

export const path = {
  queue: (topic) => `api/queues/${encodeURIComponent(topic)}`,
  base: (name) => `api/bases/${encodeURIComponent(name)}`,
  window: (id) => `api/windows/${encodeURIComponent(id)}`,
};

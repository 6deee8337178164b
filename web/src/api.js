// One zonesd: its URL and bearer token. Every call sends the token in the Authorization
// header (never a cookie: `credentials: "omit"`), and a failure is an Error carrying the
// API's message and the JSON paths of its problems.

export class ApiError extends Error {
  constructor(status, doc) {
    const problems = (doc && doc.problems) || [];
    const detail = problems.map((p) => `${p.path}: ${p.msg}`).join("; ");
    super(`${status}: ${(doc && doc.error) || "request failed"}${detail ? ` (${detail})` : ""}`);
    this.status = status;
    this.problems = problems;
  }
}

export class Host {
  constructor({ name, url, token }) {
    this.name = name;
    this.url = url.replace(/\/+$/, "");
    this.token = token;
  }

  async call(method, path, body) {
    const init = {
      method,
      credentials: "omit",
      headers: { Authorization: `Bearer ${this.token}` },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(`${this.url}${path}`, init);
    } catch (e) {
      throw new Error(`${this.url}: unreachable (${e.message}; a host of another origin needs --cors-origin ${location.origin})`);
    }
    if (resp.status === 204) return null;
    const text = await resp.text();
    let doc = null;
    try {
      doc = text ? JSON.parse(text) : null;
    } catch {
      doc = { error: text.slice(0, 200) };
    }
    if (!resp.ok) throw new ApiError(resp.status, doc);
    return doc;
  }

  get(path) { return this.call("GET", path); }
  post(path, body) { return this.call("POST", path, body === undefined ? {} : body); }
  patch(path, body) { return this.call("PATCH", path, body); }
  action(path) { return this.call("POST", path); }
  del(path) { return this.call("DELETE", path); }

  /** The zone console's WebSocket: the token rides as a subprotocol (browsers cannot set
   *  headers on a WebSocket); the server answers `zonesd.console` only. */
  console(uuid) {
    const ws = new WebSocket(
      `${this.url.replace(/^http/, "ws")}/api/zones/${encodeURIComponent(uuid)}/console`,
      ["zonesd.console", `bearer.${this.token}`],
    );
    ws.binaryType = "arraybuffer";
    return ws;
  }
}

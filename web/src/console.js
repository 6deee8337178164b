// The zone console in the browser: xterm.js over zonesd's console WebSocket (binary frames
// of raw console bytes both ways; the window size as a text frame {"resize": [cols, rows]}).
import { Terminal } from "@xterm/xterm";

const enc = new TextEncoder();
let open = null;

export function closeConsole() {
  if (!open) return;
  open.ws.close();
  open.term.dispose();
  open = null;
  document.getElementById("console").hidden = true;
}

export function openConsole(host, zone) {
  closeConsole();
  const box = document.getElementById("console");
  const state = document.getElementById("console-state");
  document.getElementById("console-title").textContent =
    `${host.name}: ${zone.alias || zone.uuid} (${zone.uuid})`;
  box.hidden = false;
  box.dataset.state = "connecting";
  state.textContent = "connecting";
  const term = new Terminal({ cols: 100, rows: 18, convertEol: false, fontSize: 13 });
  const el = document.getElementById("terminal");
  el.replaceChildren();
  term.open(el);
  const ws = host.console(zone.uuid);
  open = { ws, term };
  const set = (s) => {
    box.dataset.state = s;
    state.textContent = s;
  };
  // The console's window size: a text frame zonesd hands to the zone's supervisor.
  const resize = () => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ resize: [term.cols, term.rows] }));
  };
  term.onResize(resize);
  ws.onopen = () => {
    set("connected");
    resize();
    term.focus();
  };
  ws.onmessage = (ev) => {
    // Binary frames are the console's bytes; a text frame is zonesd's notice (JSON).
    if (typeof ev.data === "string") state.textContent = `${box.dataset.state}: ${ev.data}`;
    else term.write(new Uint8Array(ev.data));
  };
  ws.onclose = (ev) => set(`closed${ev.code && ev.code !== 1000 ? ` (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})` : ""}`);
  ws.onerror = () => set("error: the console could not be opened (is the zone running? does the token's role allow it?)");
  term.onData((d) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d));
  });
}

document.getElementById("console-close").addEventListener("click", closeConsole);

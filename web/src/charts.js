// Live charts of one zone: CPU (CPUs used), memory (MiB) and network (KiB/s received and
// sent, from the byte counters of successive samples), polled from GET
// /api/zones/{uuid}/stats. uPlot draws them; the last POINTS samples are kept.
import uPlot from "uplot";
import { h } from "./dom.js";

const POINTS = 60;
export const POLL_MS = 2000;

// The y axis from 0 to a little above the largest value, at least `floor` (a flat line of
// zeros otherwise gets uPlot's -100..100).
function chart(title, series, el, floor) {
  const opts = {
    title,
    width: 300,
    height: 150,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(floor, max * 1.2)] } },
    legend: { show: true, live: false },
    series: [{}, ...series.map((label, i) => ({ label, stroke: ["#2a7ab0", "#c0561e"][i], width: 1.5 }))],
    axes: [{}, { size: 50 }],
  };
  return new uPlot(opts, [[], ...series.map(() => [])], el);
}

export class ZoneCharts {
  constructor(host, uuid, onError) {
    this.host = host;
    this.uuid = uuid;
    this.onError = onError;
    this.data = { t: [], cpu: [], mem: [], rx: [], tx: [] };
    this.last = null;
    this.el = h("div", { class: "charts", dataset: { zone: uuid } });
    const slot = () => this.el.appendChild(h("div", { class: "chart" }));
    this.cpu = chart("CPU (CPUs)", ["used"], slot(), 0.05);
    this.mem = chart("Memory (MiB)", ["used"], slot(), 1);
    this.net = chart("Network (KiB/s)", ["rx", "tx"], slot(), 1);
    this.points = h("div", { class: "points" }, "0 samples");
    this.el.appendChild(this.points);
    this.timer = null;
  }

  start() {
    const tick = async () => {
      try {
        this.add(await this.host.get(`/api/zones/${this.uuid}/stats`));
      } catch (e) {
        // 409: the zone stopped between two polls; the view stops the charts on its refresh.
        if (e.status !== 409) this.onError(e);
      }
      if (this.timer !== null) this.timer = setTimeout(tick, POLL_MS);
    };
    this.timer = setTimeout(tick, 0);
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  add(st) {
    const t = Date.now() / 1000;
    const nets = st.network || [];
    const rxTotal = nets.reduce((a, n) => a + (n.received_bytes || 0), 0);
    const txTotal = nets.reduce((a, n) => a + (n.sent_bytes || 0), 0);
    let rx = 0;
    let tx = 0;
    if (this.last && t > this.last.t) {
      rx = Math.max(0, rxTotal - this.last.rx) / 1024 / (t - this.last.t);
      tx = Math.max(0, txTotal - this.last.tx) / 1024 / (t - this.last.t);
    }
    this.last = { t, rx: rxTotal, tx: txTotal };
    const d = this.data;
    d.t.push(t);
    d.cpu.push((st.cpu && st.cpu.used) || 0);
    d.mem.push(((st["physical-memory"] && st["physical-memory"].used) || 0) / 1048576);
    d.rx.push(rx);
    d.tx.push(tx);
    for (const k of Object.keys(d)) if (d[k].length > POINTS) d[k].shift();
    this.cpu.setData([d.t, d.cpu]);
    this.mem.setData([d.t, d.mem]);
    this.net.setData([d.t, d.rx, d.tx]);
    this.el.dataset.points = String(d.t.length);
    this.points.textContent = `${d.t.length} samples, every ${POLL_MS / 1000} s`;
  }
}

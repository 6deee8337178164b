// The fleet view: every host of this browser's list, each with its zones (state, caps,
// actions, live charts, snapshots, console), a create-zone form, its images and networks.
import "@xterm/xterm/css/xterm.css";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { Host } from "./api.js";
import { loadHosts, saveHosts } from "./store.js";
import { h, fmt } from "./dom.js";
import { ZoneCharts } from "./charts.js";
import { openConsole } from "./console.js";

const REFRESH_MS = 3000;
const views = new Map(); // host name -> HostView

class HostView {
  constructor(host) {
    this.host = host;
    this.charts = new Map(); // uuid -> ZoneCharts
    this.zones = [];
    this.status = h("span", { class: "status" }, "loading");
    this.error = h("div", { class: "error", role: "alert" });
    this.zoneRows = h("tbody");
    this.imageRows = h("tbody");
    this.linkRows = h("tbody");
    this.imageSelect = h("select", { name: "image_uuid", required: true });
    this.stubSelect = h("select", { name: "nic_tag" }, h("option", { value: "" }, "no NIC"));
    this.el = h(
      "section",
      { class: "host", dataset: { host: host.name } },
      h(
        "h2",
        {},
        host.name,
        " ",
        h("small", {}, host.url),
        " ",
        this.status,
        h("button", { type: "button", class: "remove", onclick: () => removeHost(host.name) }, "Remove host"),
      ),
      this.error,
      h(
        "details",
        { open: true, class: "zones" },
        h("summary", {}, "Zones"),
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Alias", "UUID", "State", "RAM MiB", "CPU cap %", "Quota GiB", "Actions"].map((c) => h("th", {}, c)))),
          this.zoneRows,
        ),
        this.createForm(),
      ),
      h(
        "details",
        { open: true, class: "images" },
        h("summary", {}, "Images"),
        h("table", {}, h("thead", {}, h("tr", {}, ["Name", "ID", "Type", ""].map((c) => h("th", {}, c)))), this.imageRows),
        this.importForm(),
      ),
      h(
        "details",
        { open: true, class: "networks" },
        h("summary", {}, "Networks"),
        h("table", {}, h("thead", {}, h("tr", {}, ["Link", "Class", "Over", "State", "maxbw", ""].map((c) => h("th", {}, c)))), this.linkRows),
        this.linkForm(),
      ),
    );
  }

  fail(e) {
    this.error.textContent = e ? String(e.message || e) : "";
  }

  /** Runs an API call: its error shown, the view refreshed after. */
  async act(what, f) {
    this.status.textContent = `${what}...`;
    try {
      await f();
      this.fail(null);
    } catch (e) {
      this.fail(new Error(`${what}: ${e.message}`));
    }
    await this.refresh();
  }

  createForm() {
    const form = h(
      "form",
      { class: "create-zone", autocomplete: "off" },
      h("h3", {}, "Create a zone"),
      h("label", {}, "Alias ", h("input", { name: "alias", required: true, pattern: "[A-Za-z0-9._\\-]{1,64}" })),
      h("label", {}, "Image ", this.imageSelect),
      h("label", {}, "RAM MiB ", h("input", { name: "ram", type: "number", min: 16, value: 256, required: true })),
      h("label", {}, "CPU cap % ", h("input", { name: "cpu_cap", type: "number", min: 1, value: 100 })),
      h("label", {}, "Quota GiB ", h("input", { name: "quota", type: "number", min: 1 })),
      h("label", {}, "NIC on ", this.stubSelect),
      h("label", {}, "IP ", h("input", { name: "ip", placeholder: "10.0.0.5" })),
      h("label", {}, "Netmask ", h("input", { name: "netmask", value: "255.255.255.0" })),
      h("label", {}, h("input", { name: "autoboot", type: "checkbox", checked: true }), " boot it"),
      h("button", { type: "submit" }, "Create"),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const payload = {
        brand: "joyent",
        alias: f.get("alias"),
        image_uuid: f.get("image_uuid"),
        ram: Number(f.get("ram")),
        autoboot: f.get("autoboot") === "on",
      };
      if (f.get("cpu_cap")) payload.cpu_cap = Number(f.get("cpu_cap"));
      if (f.get("quota")) payload.quota = Number(f.get("quota"));
      if (f.get("nic_tag")) {
        payload.nics = [{ nic_tag: f.get("nic_tag"), ip: f.get("ip") || "dhcp", netmask: f.get("netmask") || undefined }];
        if (payload.nics[0].ip === "dhcp") delete payload.nics[0].netmask;
      }
      this.act(`create ${payload.alias}`, async () => {
        await this.host.post("/api/zones", payload);
        form.reset();
      });
    });
    return form;
  }

  importForm() {
    const form = h(
      "form",
      { class: "import-image", autocomplete: "off" },
      h("label", {}, "Import ", h("input", { name: "source", required: true, placeholder: "/path/on/host.tar.gz or docker://HOST/REPO:TAG", size: 40 })),
      h("label", {}, "Name ", h("input", { name: "name" })),
      h("label", {}, h("input", { name: "rootfs", type: "checkbox" }), " a root filesystem"),
      h("button", { type: "submit" }, "Import"),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const body = { source: f.get("source"), rootfs: f.get("rootfs") === "on" };
      if (f.get("name")) body.name = f.get("name");
      this.act("import", () => this.host.post("/api/images", body));
    });
    return form;
  }

  linkForm() {
    const form = h(
      "form",
      { class: "create-link", autocomplete: "off" },
      h("label", {}, "Etherstub ", h("input", { name: "etherstub", required: true, maxlength: 15, pattern: "[A-Za-z0-9][A-Za-z0-9._\\-]{0,14}" })),
      h("button", { type: "submit" }, "Create"),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      this.act("create etherstub", () => this.host.post("/api/links", { etherstub: f.get("etherstub") }));
    });
    return form;
  }

  async refresh() {
    try {
      const [zones, images, links] = await Promise.all([
        this.host.get("/api/zones"),
        this.host.get("/api/images"),
        this.host.get("/api/links"),
      ]);
      this.zones = zones;
      this.renderZones(zones);
      this.renderImages(images);
      this.renderLinks(links);
      this.status.textContent = `${zones.length} zone${zones.length === 1 ? "" : "s"}`;
      this.status.dataset.ok = "true";
    } catch (e) {
      this.status.textContent = "unreachable";
      this.status.dataset.ok = "false";
      this.fail(e);
    }
  }

  zoneRow(z) {
    const p = (verb) => () => this.act(`${verb} ${z.alias || z.uuid}`, () => this.host.action(`/api/zones/${z.uuid}/${verb}`));
    const running = z.state === "running";
    const btn = (label, f, enabled = true) => h("button", { type: "button", class: label, onclick: f, disabled: !enabled }, label);
    return h(
      "tr",
      { class: "zone", dataset: { uuid: z.uuid, alias: z.alias || "", state: z.state } },
      h("td", {}, z.alias || ""),
      h("td", { class: "uuid" }, z.uuid),
      h("td", { class: "state" }, z.state),
      h("td", {}, fmt.val(z.ram || z.max_physical_memory)),
      h("td", {}, fmt.val(z.cpu_cap)),
      h("td", {}, fmt.val(z.quota)),
      h(
        "td",
        { class: "actions" },
        btn("boot", p("boot"), !running),
        btn("halt", p("halt"), running),
        btn("shutdown", p("shutdown"), running),
        btn("reboot", p("reboot"), running),
        btn("console", () => openConsole(this.host, z), running),
        btn("details", () => this.toggleDetails(z)),
        btn("delete", () => {
          if (confirm(`Delete zone ${z.alias || z.uuid} on ${this.host.name}?`)) {
            this.act(`delete ${z.alias || z.uuid}`, () => this.host.del(`/api/zones/${z.uuid}`));
          }
        }),
      ),
    );
  }

  renderZones(zones) {
    const rows = [];
    for (const z of zones) {
      rows.push(this.zoneRow(z));
      const c = this.charts.get(z.uuid);
      if (c) rows.push(h("tr", { class: "zone-details", dataset: { uuid: z.uuid } }, h("td", { colspan: 7 }, c.panel)));
    }
    for (const [uuid, c] of this.charts) {
      const z = zones.find((x) => x.uuid === uuid);
      if (!z) {
        c.stop();
        this.charts.delete(uuid);
      } else if (z.state !== "running" && c.timer !== null) c.stop();
      else if (z.state === "running" && c.timer === null) c.start();
    }
    this.zoneRows.replaceChildren(...rows);
  }

  toggleDetails(z) {
    const had = this.charts.get(z.uuid);
    if (had) {
      had.stop();
      this.charts.delete(z.uuid);
    } else {
      const c = new ZoneCharts(this.host, z.uuid, (e) => this.fail(e));
      const snaps = h("ul", { class: "snapshots" });
      const snapForm = h("form", { class: "snapshot" }, h("input", { name: "name", placeholder: "snapshot name", required: true }), h("button", { type: "submit" }, "Snapshot"));
      const loadSnaps = async () => {
        try {
          const list = await this.host.get(`/api/zones/${z.uuid}/snapshots`);
          const when = (c) => (typeof c === "number" ? new Date(c * 1000).toISOString().replace(".000Z", "Z") : c);
          snaps.replaceChildren(...list.map((s, i) => this.snapshotItem(z, s, list.slice(i + 1), when, loadSnaps)));
        } catch (e) {
          this.fail(e);
        }
      };
      snapForm.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const name = new FormData(snapForm).get("name");
        this.act(`snapshot ${name}`, async () => {
          await this.host.post(`/api/zones/${z.uuid}/snapshots`, { name });
          snapForm.reset();
          await loadSnaps();
        });
      });
      loadSnaps();
      c.panel = h("div", { class: "details" }, c.el, h("div", { class: "snaps" }, h("h4", {}, "Snapshots"), snaps, snapForm));
      this.charts.set(z.uuid, c);
      if (z.state === "running") c.start();
    }
    this.renderZones(this.zones);
  }

  /** One snapshot with its Rollback (recursive when newer ones exist: they go, as the
   *  confirm says) and Delete buttons. */
  snapshotItem(z, s, newer, when, reload) {
    const zone = z.alias || z.uuid;
    const base = `/api/zones/${z.uuid}/snapshots/${encodeURIComponent(s.name)}`;
    const rollback = () => {
      const gone = newer.length ? ` This deletes the newer snapshots: ${newer.map((n) => n.name).join(", ")}.` : "";
      const cur = this.zones.find((x) => x.uuid === z.uuid) || z;
      const running = cur.state === "running" ? " The zone is halted and booted again." : "";
      if (!confirm(`Roll zone ${zone} back to snapshot ${s.name}?${running}${gone}`)) return;
      this.act(`rollback ${s.name}`, async () => {
        await this.host.post(`${base}/rollback`, newer.length ? { recursive: true } : {});
        await reload();
      });
    };
    const remove = () => {
      if (!confirm(`Delete snapshot ${s.name} of zone ${zone}?`)) return;
      this.act(`delete snapshot ${s.name}`, async () => {
        await this.host.del(base);
        await reload();
      });
    };
    return h(
      "li",
      { dataset: { snapshot: s.name } },
      `${s.name}${s.created ? ` (${when(s.created)})` : ""} `,
      h("button", { type: "button", class: "rollback", onclick: rollback }, "Rollback"),
      h("button", { type: "button", class: "delete-snapshot", onclick: remove }, "Delete"),
    );
  }

  /** A VNIC's maxbw, editable: an empty field resets it (null). */
  maxbwCell(l) {
    if (l.class !== "vnic" || l.link.includes("/")) return h("td", {}, "");
    const now = l.props && l.props.maxbw && l.props.maxbw !== "--" ? l.props.maxbw : "";
    const input = h("input", { name: "maxbw", value: now, placeholder: "none", size: 6, title: "e.g. 100M, 1.5G, 500K; empty: no limit" });
    const form = h("form", { class: "maxbw" }, input, h("button", { type: "submit" }, "Set"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = input.value.trim();
      this.act(`maxbw ${l.link}`, () => this.host.patch(`/api/links/${encodeURIComponent(l.link)}`, { maxbw: v === "" ? null : v }));
    });
    return h("td", {}, form);
  }

  renderImages(images) {
    const keep = this.imageSelect.value;
    this.imageSelect.replaceChildren(...images.map((i) => h("option", { value: i.id }, `${i.name || "?"} (${String(i.id).slice(0, 12)})`)));
    if (keep) this.imageSelect.value = keep;
    this.imageRows.replaceChildren(
      ...images.map((i) =>
        h(
          "tr",
          { class: "image", dataset: { id: i.id } },
          h("td", {}, i.name || ""),
          h("td", { class: "uuid" }, i.id),
          h("td", {}, fmt.val(i.type)),
          h("td", {}, h("button", { type: "button", onclick: () => this.act("delete image", () => this.host.del(`/api/images/${encodeURIComponent(i.id)}`)) }, "delete")),
        ),
      ),
    );
  }

  renderLinks(links) {
    const keep = this.stubSelect.value;
    const stubs = links.filter((l) => l.class === "etherstub");
    this.stubSelect.replaceChildren(h("option", { value: "" }, "no NIC"), ...stubs.map((l) => h("option", { value: l.link }, l.link)));
    this.stubSelect.value = keep;
    // A maxbw being typed is not wiped by the periodic refresh.
    if (this.linkRows.contains(document.activeElement)) return;
    this.linkRows.replaceChildren(
      ...links.map((l) =>
        h(
          "tr",
          { class: "link", dataset: { link: l.link } },
          h("td", {}, l.link),
          h("td", {}, fmt.val(l.class)),
          h("td", {}, fmt.val(l.over)),
          h("td", {}, fmt.val(l.state)),
          this.maxbwCell(l),
          // A zone's own links (ZONE/net0) go with the zone: no delete here.
          h("td", {}, ["etherstub", "vnic"].includes(l.class) && !l.link.includes("/") ? h("button", { type: "button", onclick: () => this.act(`delete ${l.link}`, () => this.host.del(`/api/links/${encodeURIComponent(l.link)}`)) }, "delete") : ""),
        ),
      ),
    );
  }
}

function render() {
  const main = document.getElementById("hosts");
  const hosts = loadHosts();
  for (const [name, v] of views) {
    if (!hosts.some((x) => x.name === name)) {
      for (const c of v.charts.values()) c.stop();
      views.delete(name);
    }
  }
  for (const hd of hosts) if (!views.has(hd.name)) views.set(hd.name, new HostView(new Host(hd)));
  main.replaceChildren(...hosts.map((hd) => views.get(hd.name).el));
  if (!hosts.length) main.append(h("p", { class: "empty" }, "No hosts yet: add a zonesd above."));
  for (const v of views.values()) v.refresh();
}

function removeHost(name) {
  saveHosts(loadHosts().filter((x) => x.name !== name));
  render();
}

document.getElementById("add-host").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const f = new FormData(form);
  const host = { name: f.get("name").trim(), url: f.get("url").trim(), token: f.get("token").trim() };
  saveHosts([...loadHosts().filter((x) => x.name !== host.name), host]);
  form.reset();
  form.elements.url.value = location.origin;
  render();
});

document.getElementById("add-host").elements.url.value = location.origin;
render();
setInterval(() => {
  for (const v of views.values()) v.refresh();
}, REFRESH_MS);

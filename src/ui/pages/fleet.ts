// Fleet: every node, sortable and filterable, virtualized so 10,000 rows cost what one screen costs.
import type { FleetNodeView, FleetView } from "../../protocol/admin.js";
import { getJson } from "../api.js";
import { clear, errorBox, fmtRelative, fmtTime, h } from "../dom.js";
import type { Page } from "../page.js";

const ROW = 30;
const OVERSCAN = 8;

type Col = { key: string; title: string; value: (n: FleetNodeView) => string | number; text?: (n: FleetNodeView, now: number) => string; width: string };
const cert = (n: FleetNodeView, kind: string) => n.certificates.find((c) => c.kind === kind);
const COLS: Col[] = [
  { key: "name", title: "Node", value: (n) => n.name, width: "minmax(9rem, 2fr)" },
  { key: "connected", title: "Channel", value: (n) => (n.connected ? 1 : 0), text: (n) => (n.connected ? "connected" : "offline"), width: "7.5rem" },
  { key: "lastSeen", title: "Last seen", value: (n) => n.lastHello ?? n.lastSeen, text: (n, now) => fmtRelative(n.lastHello ?? n.lastSeen, now), width: "7rem" },
  { key: "client", title: "Client expires", value: (n) => cert(n, "client")?.notAfter ?? "", text: (n) => fmtTime(cert(n, "client")?.notAfter), width: "10rem" },
  { key: "serving", title: "Serving expires", value: (n) => cert(n, "serving")?.notAfter ?? "", text: (n) => fmtTime(cert(n, "serving")?.notAfter), width: "10rem" },
  { key: "nextRenewal", title: "Next renewal", value: (n) => n.nextRenewal ?? "", text: (n, now) => (!n.nextRenewal ? "-" : Date.parse(n.nextRenewal) <= now ? `due (${fmtRelative(n.nextRenewal, now)})` : fmtRelative(n.nextRenewal, now)), width: "8.5rem" },
  { key: "key", title: "Key", value: (n) => cert(n, "client")?.keyAlgorithm ?? "", text: (n) => cert(n, "client")?.keyAlgorithm ?? "-", width: "7rem" },
  { key: "fips", title: "FIPS", value: (n) => (n.fips === undefined ? "" : n.fips ? "yes" : "no"), text: (n) => (n.fips === undefined ? "-" : n.fips ? "yes" : "no"), width: "3.5rem" },
  { key: "agent", title: "Agent", value: (n) => n.agentVersion ?? "", text: (n) => n.agentVersion ?? "-", width: "6rem" },
  { key: "state", title: "State", value: (n) => (n.evicted ? "evicted" : n.failing ? "failing" : "active"), width: "5.5rem" },
];

export function fleetPage(): Page {
  let nodes: FleetNodeView[] = [];
  let now = Date.now();
  let view: FleetNodeView[] = [];
  let sortKey = "name";
  let sortDir = 1;
  let filter = "";
  let stateFilter = "all";
  let body: HTMLDivElement;
  let spacer: HTMLDivElement;
  let count: HTMLElement;
  let headRow: HTMLElement;
  let error: HTMLElement;

  const derive = () => {
    const f = filter.trim().toLowerCase();
    const col = COLS.find((c) => c.key === sortKey)!;
    view = nodes.filter((n) => {
      if (stateFilter === "connected" && !n.connected) return false;
      if (stateFilter === "offline" && n.connected) return false;
      if (stateFilter === "evicted" && !n.evicted) return false;
      if (stateFilter === "failing" && !n.failing) return false;
      if (!f) return true;
      return n.name.toLowerCase().includes(f) || n.addresses.some((a) => a.includes(f)) || (n.agentVersion ?? "").toLowerCase().includes(f) || n.certificates.some((c) => c.keyAlgorithm.toLowerCase().includes(f) || c.serial.toLowerCase().includes(f));
    });
    const vals = new Map(view.map((n) => [n, col.value(n)]));
    view.sort((a, b) => {
      const x = vals.get(a)!, y = vals.get(b)!;
      return (x < y ? -1 : x > y ? 1 : a.name < b.name ? -1 : 1) * sortDir;
    });
    count.textContent = `${view.length} of ${nodes.length} nodes`;
    spacer.style.height = `${view.length * ROW}px`;
    for (const th of Array.from(headRow.children)) th.setAttribute("aria-sort", (th as HTMLElement).dataset.col === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
    paint();
  };

  // Only the rows in view (plus a margin) exist in the DOM.
  const paint = () => {
    const top = body.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(view.length, Math.ceil((top + body.clientHeight) / ROW) + OVERSCAN);
    const rows: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const n = view[i];
      const row = h(
        "div",
        { class: `row${n.failing ? " failing" : ""}${n.evicted ? " evicted" : ""}`, role: "row", "data-node": n.name, title: n.failing ?? "" },
        COLS.map((c) =>
          h(
            "div",
            { role: "cell", "data-col": c.key, class: `cell c-${c.key}` },
            c.key === "name" ? h("a", { href: `#/node/${encodeURIComponent(n.name)}` }, n.name) : c.key === "connected" ? h("span", { class: n.connected ? "dot on" : "dot off" }, c.text!(n, now)) : (c.text ?? ((x) => String(c.value(x))))(n, now),
          ),
        ),
      );
      row.style.transform = `translateY(${i * ROW}px)`;
      rows.push(row);
    }
    spacer.replaceChildren(...rows);
  };

  const sortBy = (key: string) => {
    sortDir = sortKey === key ? -sortDir : 1;
    sortKey = key;
    derive();
  };

  const load = async () => {
    try {
      const f = await getJson<FleetView>("/api/fleet");
      nodes = f.nodes;
      now = Date.parse(f.now);
      error.replaceChildren();
      derive();
      document.body.dataset.fleetLoaded = String(nodes.length);
      // The first rows are on screen and respond: scripts/bench-dashboard.ts reads this mark.
      performance.mark("fleet-interactive");
    } catch (e) {
      error.replaceChildren(errorBox(e));
    }
  };

  const grid = COLS.map((c) => c.width).join(" ");
  return {
    title: "Fleet",
    topics: ["fleet"],
    async render(main) {
      clear(main);
      error = h("div");
      count = h("span", { class: "count", "data-test": "fleet-count" }, "loading…");
      const search = h("input", { type: "search", placeholder: "filter: name, address, version, key, serial", "aria-label": "filter nodes", "data-test": "fleet-filter", value: filter });
      let t: number | undefined;
      search.addEventListener("input", () => {
        clearTimeout(t);
        t = window.setTimeout(() => ((filter = search.value), derive()), 80);
      });
      const state = h("select", { "aria-label": "state", "data-test": "fleet-state" }, ["all", "connected", "offline", "failing", "evicted"].map((s) => h("option", { value: s }, s)));
      state.value = stateFilter;
      state.addEventListener("change", () => ((stateFilter = state.value), derive()));
      headRow = h(
        "div",
        { class: "row head", role: "row" },
        COLS.map((c) =>
          h("div", {
            role: "columnheader",
            class: `cell c-${c.key}`,
            "data-col": c.key,
            tabindex: 0,
            onclick: () => sortBy(c.key),
            onkeydown: (e: Event) => {
              if ((e as KeyboardEvent).key === "Enter" || (e as KeyboardEvent).key === " ") (e.preventDefault(), sortBy(c.key));
            },
          }, c.title),
        ),
      );
      spacer = h("div", { class: "spacer" });
      body = h("div", { class: "vbody", role: "rowgroup", "data-test": "fleet-body" }, spacer);
      body.addEventListener("scroll", () => requestAnimationFrame(paint), { passive: true });
      const tableEl = h("div", { class: "vtable", role: "table", "aria-label": "nodes" }, headRow, body);
      tableEl.style.setProperty("--grid", grid);
      main.append(h("div", { class: "toolbar" }, search, state, count), error, tableEl);
      await load();
    },
    onChange(topic) {
      if (topic === "fleet") void load();
    },
  };
}

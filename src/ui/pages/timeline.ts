// Expiry timeline: when the fleet's certificates expire and when their renewal windows open, per
// time bucket (uPlot), the danger zone (expired, or expiring within a day) shaded, and the nodes
// whose renewals are failing listed and drawn in red.
import uPlot from "uplot";
import type { FleetView } from "../../protocol/admin.js";
import { getJson } from "../api.js";
import { clear, fill, errorBox, fmtTime, h, section, table } from "../dom.js";
import type { Page } from "../page.js";

/** The agent's default dangerWindow: readiness fails when the client certificate is this close to expiry. */
export const DANGER_MS = 86_400_000;
const BUCKETS = 60;

export function timelinePage(): Page {
  let plot: uPlot | undefined;
  let host: HTMLElement;
  let below: HTMLElement;

  const draw = (f: FleetView) => {
    const now = Date.parse(f.now);
    const live = f.nodes.filter((n) => !n.evicted);
    const certs = live.flatMap((n) => n.certificates.map((c) => ({ node: n, c, exp: Date.parse(c.notAfter), opens: c.renewFrom ? Date.parse(c.renewFrom) : undefined })));
    const times = certs.flatMap((x) => [x.exp, x.opens ?? x.exp]);
    const lo = Math.min(now, ...times);
    const hi = Math.max(now + DANGER_MS * 2, ...times);
    const step = Math.max(60_000, Math.ceil((hi - lo) / BUCKETS));
    const xs: number[] = [], expiring: number[] = [], opening: number[] = [], failing: number[] = [];
    for (let t = lo; t <= hi + step; t += step) (xs.push(t / 1000), expiring.push(0), opening.push(0), failing.push(0));
    const bucket = (t: number) => Math.min(xs.length - 1, Math.floor((t - lo) / step));
    for (const x of certs) {
      if (x.node.failing) failing[bucket(x.exp)]++;
      else expiring[bucket(x.exp)]++;
      if (x.opens !== undefined) opening[bucket(x.opens)]++;
    }
    const width = Math.max(480, host.clientWidth - 16);
    const bars = uPlot.paths.bars!({ size: [0.7, 40] });
    const opts: uPlot.Options = {
      width,
      height: 320,
      title: "Certificates expiring / renewal windows opening",
      scales: { x: { time: true } },
      axes: [{}, { label: "certificates", size: 60 }],
      series: [
        {},
        { label: "expiring", stroke: "#2f6fb3", fill: "rgba(47,111,179,0.45)", paths: bars },
        { label: "expiring, renewals failing", stroke: "#c0392b", fill: "rgba(192,57,43,0.85)", paths: bars },
        { label: "renewal windows opening", stroke: "#27ae60", fill: "rgba(39,174,96,0.45)", paths: bars },
      ],
      hooks: {
        // The danger zone: everything before now + one day (expired, or too close to act on).
        drawClear: [
          (u) => {
            const c = u.ctx;
            const x0 = u.bbox.left;
            const x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos((now + DANGER_MS) / 1000, "x", true));
            if (x1 > x0) {
              c.save();
              c.fillStyle = "rgba(192,57,43,0.12)";
              c.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
              c.restore();
            }
            const xn = u.valToPos(now / 1000, "x", true);
            c.save();
            c.strokeStyle = "#c0392b";
            c.setLineDash([4, 4]);
            c.beginPath();
            c.moveTo(xn, u.bbox.top);
            c.lineTo(xn, u.bbox.top + u.bbox.height);
            c.stroke();
            c.restore();
          },
        ],
      },
    };
    plot?.destroy();
    plot = new uPlot(opts, [xs, expiring, failing, opening], host);

    const soon = certs.filter((x) => x.exp - now < DANGER_MS).sort((a, b) => a.exp - b.exp);
    const failingNodes = live.filter((n) => n.failing);
    const link = (name: string) => h("a", { href: `#/node/${encodeURIComponent(name)}` }, name);
    fill(below,
      h(
        "div",
        { class: "cards" },
        h("div", { class: "card", "data-test": "danger-count" }, h("b", {}, String(soon.length)), " certificates expired or expiring within 24 h (danger zone)"),
        h("div", { class: `card${failingNodes.length ? " bad" : ""}`, "data-test": "failing-count" }, h("b", {}, String(failingNodes.length)), " nodes with failing renewals"),
        h("div", { class: "card" }, h("b", {}, String(certs.length)), ` certificates on ${live.length} nodes`),
      ),
      failingNodes.length ? section("Failing renewals", table(["Node", "Why"], failingNodes.slice(0, 500).map((n) => [link(n.name), n.failing!]), { "data-test": "failing-table" })) : null,
      soon.length ? section("In the danger zone", table(["Node", "Certificate", "Expires"], soon.slice(0, 500).map((x) => [link(x.node.name), x.c.kind, fmtTime(x.c.notAfter)]))) : null,
    );
    document.body.dataset.timelineLoaded = String(certs.length);
  };

  const load = async () => {
    try {
      draw(await getJson<FleetView>("/api/fleet"));
    } catch (e) {
      below.replaceChildren(errorBox(e));
    }
  };

  return {
    title: "Expiry timeline",
    topics: ["fleet"],
    async render(main) {
      clear(main);
      host = h("div", { class: "chart", "data-test": "timeline-chart" });
      below = h("div");
      main.append(host, below);
      await load();
    },
    onChange(topic) {
      if (topic === "fleet") void load();
    },
    dispose() {
      plot?.destroy();
      plot = undefined;
    },
  };
}

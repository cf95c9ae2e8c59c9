// Node detail: its certificates (subject, SANs, serials, issuer), facts, channel state, history.
import type { NodeDetailView } from "../../protocol/admin.js";
import { getJson, postJson } from "../api.js";
import { clear, fill, confirmAction, errorBox, fmtRelative, fmtTime, h, section, table } from "../dom.js";
import type { Page } from "../page.js";

export function nodePage(): Page {
  let name = "";
  let main: HTMLElement;

  const draw = (d: NodeDetailView) => {
    const now = Date.now();
    const live = new Set(d.certificates.map((c) => c.serial));
    const evict = d.evicted
      ? null
      : h("button", {
          class: "danger",
          "data-test": "node-evict",
          onclick: async () => {
            if (!(await confirmAction(`Evict ${d.name}? It can no longer renew or connect until it re-joins with a token bound to it.`))) return;
            try {
              await postJson(`/api/nodes/${encodeURIComponent(d.name)}/evict`, {});
              await load();
            } catch (e) {
              main.prepend(errorBox(e));
            }
          },
        }, "Evict…");
    fill(main,
      h("h1", { "data-test": "node-name" }, d.name, " ", h("span", { class: d.connected ? "badge on" : "badge off" }, d.connected ? "connected" : "offline"), d.evicted ? h("span", { class: "badge failed" }, "evicted") : null, " ", evict),
      d.failing ? h("div", { class: "error" }, d.failing) : null,
      section(
        "Certificates in use",
        table(
          ["Kind", "Serial", "Subject", "SANs", "Not before", "Not after", "Renewal window", "Key", "Issuer"],
          d.certificates.map((c) => [
            c.kind,
            h("code", {}, c.serial),
            d.issued.find((i) => i.serial === c.serial)?.subject ?? "-",
            // The SANs the control plane records for the node's live serving certificates.
            c.kind === "serving" ? [...d.servingSans.dns, ...d.servingSans.ip].join(", ") || "-" : "",
            fmtTime(c.notBefore),
            `${fmtTime(c.notAfter)} (${fmtRelative(c.notAfter, now)})`,
            c.renewFrom ? `${fmtTime(c.renewFrom)} – ${fmtTime(c.renewBy)}` : "-",
            c.keyAlgorithm,
            c.issuer ?? "-",
          ]),
          { "data-test": "node-certs" },
        ),
      ),
      section(
        "Issued by the control plane",
        table(
          ["Kind", "Serial", "Subject", "SANs", "Not before", "Not after", "Issuer (SHA-256)"],
          d.issued.slice(0, 200).map((c) => [c.kind + (live.has(c.serial) ? " (in use)" : ""), h("code", {}, c.serial), c.subject, c.sans ? [...c.sans.dns, ...c.sans.ip].join(", ") : "", fmtTime(c.notBefore), fmtTime(c.notAfter), h("code", { title: c.issuerFingerprint ?? "" }, (c.issuerFingerprint ?? "-").slice(0, 23))]),
          { "data-test": "node-issued" },
        ),
      ),
      section(
        "Channel",
        table(
          ["", ""],
          [
            ["state", d.connected ? "connected" : "offline"],
            ["last hello", `${fmtTime(d.lastHello)} ${d.lastHello ? `(${fmtRelative(d.lastHello, now)})` : ""}`],
            ["last seen", fmtTime(d.lastSeen)],
            ["first seen", fmtTime(d.firstSeen)],
            ["join address", d.joinAddress ?? "-"],
            ["addresses", d.addresses.join(", ") || "-"],
            ["agent", d.agentVersion ?? "-"],
            ["crypto provider", `${d.cryptoProvider ?? "-"}${d.fips ? " (FIPS)" : ""}`],
            ["trust bundle (SHA-256)", h("code", {}, d.trustBundleSha256 ?? "-")],
            ["confirmed client serial", h("code", {}, d.confirmedSerial ?? "-")],
            ["evicted", fmtTime(d.evictedAt)],
          ],
          { class: "kv" },
        ),
      ),
      section("Facts", table(["Fact", "Value"], Object.entries(d.facts).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]), { class: "kv" })),
      d.campaigns.length ? section("Campaigns", table(["Campaign", "State", "Attempts", "Reason"], d.campaigns.map((c) => [c.id, c.state, String(c.attempts), c.lastError ?? ""]))) : null,
      section("History", table(["Time", "Type", "Rule", "Reason", "Source"], d.history.map((e) => [fmtTime(e.time), e.type, e.rule ?? "", e.reason ?? "", e.source ?? ""]), { "data-test": "node-history" })),
    );
    document.body.dataset.nodeLoaded = d.name;
  };

  const load = async () => {
    try {
      draw(await getJson<NodeDetailView>(`/api/nodes/${encodeURIComponent(name)}`));
    } catch (e) {
      main.replaceChildren(errorBox(e));
    }
  };

  return {
    title: "Node",
    topics: ["fleet"],
    async render(m, _params, arg) {
      main = m;
      name = arg ?? "";
      clear(main);
      await load();
    },
    onChange(topic) {
      if (topic === "fleet") void load();
    },
  };
}

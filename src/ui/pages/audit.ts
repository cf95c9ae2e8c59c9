// Audit: issuances and denials with the rule and reason, filtered by node, rule, type and time.
// The filter lives in the URL (#/audit?node=...), so a filtered view can be linked.
import type { AuditEventView } from "../../protocol/admin.js";
import { getJson } from "../api.js";
import { clear, errorBox, fmtTime, h } from "../dom.js";
import type { Page } from "../page.js";

const FIELDS = ["node", "rule", "type", "since", "until"] as const;

export function auditPage(): Page {
  return {
    title: "Audit",
    topics: [],
    async render(main, params) {
      clear(main);
      const inputs = Object.fromEntries(
        FIELDS.map((f) => [f, h("input", { type: f === "since" || f === "until" ? "datetime-local" : "text", name: f, "data-test": `audit-${f}`, placeholder: f === "type" ? "join, join.denied, renew…" : f, value: f === "since" || f === "until" ? (params.get(f) ?? "").slice(0, 16) : (params.get(f) ?? "") })]),
      ) as Record<(typeof FIELDS)[number], HTMLInputElement>;
      const out = h("div");
      const apply = (e?: Event) => {
        e?.preventDefault();
        const q = new URLSearchParams();
        for (const f of FIELDS) {
          const v = inputs[f].value.trim();
          // datetime-local has no zone: the form speaks UTC, as every time on these pages does.
          if (v) q.set(f, f === "since" || f === "until" ? new Date(v + "Z").toISOString() : v);
        }
        location.hash = `#/audit${q.size ? `?${q}` : ""}`;
      };
      main.append(
        h("form", { class: "toolbar", onsubmit: apply }, FIELDS.map((f) => h("label", {}, `${f} `, inputs[f])), h("button", { type: "submit", "data-test": "audit-apply" }, "Filter"), h("span", { class: "muted" }, "times in UTC")),
        out,
      );
      try {
        const q = new URLSearchParams();
        for (const f of FIELDS) if (params.get(f)) q.set(f, params.get(f)!);
        q.set("limit", "1000");
        const { events, scanned } = await getJson<{ events: AuditEventView[]; scanned: number }>(`/api/audit?${q}`);
        out.replaceChildren(
          h("p", { class: "muted", "data-test": "audit-count" }, `${events.length} events${events.length === 1000 ? " (the newest 1000 shown)" : ""}, from the newest ${scanned} in the audit log`),
          h(
            "table",
            { "data-test": "audit-table" },
            h("thead", {}, h("tr", {}, ["Time", "Type", "Node", "Rule", "Reason", "Source"].map((x) => h("th", {}, x)))),
            h(
              "tbody",
              {},
              events.map((e) =>
                h(
                  "tr",
                  { class: e.type.endsWith(".denied") || e.type.endsWith(".rejected") ? "denied" : "", "data-type": e.type, "data-rule": e.rule ?? "" },
                  h("td", {}, fmtTime(e.time)),
                  h("td", {}, e.type),
                  h("td", {}, e.node ? h("a", { href: `#/node/${encodeURIComponent(e.node)}` }, e.node) : "-"),
                  h("td", { "data-col": "rule" }, e.rule ?? ""),
                  h("td", {}, e.reason ?? ""),
                  h("td", {}, e.source ?? ""),
                ),
              ),
            ),
          ),
        );
        document.body.dataset.auditLoaded = String(events.length);
      } catch (e) {
        out.replaceChildren(errorBox(e));
      }
    },
  };
}

// Campaigns: live progress of every rotation campaign, started and cancelled with confirmation.
import type { CampaignNodeRecord, CampaignRecord } from "../../server/store/store.js";
import { getJson, postJson } from "../api.js";
import { clear, confirmAction, errorBox, fmtTime, h, section, table } from "../dom.js";
import type { Page } from "../page.js";

interface CampaignStatusJson {
  campaign: Omit<CampaignRecord, "createdAt" | "finishedAt"> & { createdAt: string; finishedAt?: string };
  counts: Record<CampaignNodeRecord["state"], number>;
  nodes: (Omit<CampaignNodeRecord, "startedAt" | "finishedAt" | "nextAttemptAt"> & { startedAt?: string; finishedAt?: string })[];
}

const STATES = ["done", "in-flight", "pending", "failed"] as const;

function progress(s: CampaignStatusJson): HTMLElement {
  const total = STATES.reduce((a, k) => a + s.counts[k], 0) || 1;
  const bar = h("div", { class: "progress", role: "img", "aria-label": STATES.map((k) => `${s.counts[k]} ${k}`).join(", ") });
  for (const k of STATES) {
    const seg = h("span", { class: `seg ${k}` });
    seg.style.width = `${(100 * s.counts[k]) / total}%`;
    bar.append(seg);
  }
  return bar;
}

export function campaignsPage(): Page {
  let list: HTMLElement;
  let message: HTMLElement;

  const card = (s: CampaignStatusJson) => {
    const c = s.campaign;
    const cancel =
      c.state === "running"
        ? h("button", {
            class: "danger",
            "data-test": "campaign-cancel",
            onclick: async () => {
              if (!(await confirmAction(`Cancel campaign ${c.id}? Nodes not yet rotated keep their certificates.`))) return;
              try {
                await postJson(`/api/campaigns/${encodeURIComponent(c.id)}/cancel`, {});
                await load();
              } catch (e) {
                message.replaceChildren(errorBox(e));
              }
            },
          }, "Cancel…")
        : null;
    const notable = s.nodes.filter((n) => n.state === "failed" || n.state === "in-flight").slice(0, 200);
    return h(
      "article",
      { class: `campaign ${c.state}`, "data-campaign": c.id, "data-state": c.state },
      h("header", {}, h("b", {}, c.id), h("span", { class: `badge ${c.state}`, "data-test": "campaign-state" }, c.state), h("span", {}, `${c.which.join("+")}${c.keyAlgorithm ? ` → ${c.keyAlgorithm}` : ""}, ${c.maxInFlight} at a time`), h("span", { class: "muted" }, `started ${fmtTime(c.createdAt)}${c.finishedAt ? `, ended ${fmtTime(c.finishedAt)}` : ""}`), cancel),
      h("p", { class: "muted" }, c.reason),
      progress(s),
      h("p", { class: "counts", "data-test": "campaign-counts" }, STATES.map((k) => h("span", { class: `count ${k}`, "data-count": k }, `${s.counts[k]} ${k}`))),
      notable.length ? table(["Node", "State", "Attempts", "Reason"], notable.map((n) => [h("a", { href: `#/node/${encodeURIComponent(n.node)}` }, n.node), n.state, String(n.attempts), n.lastError ?? ""])) : null,
    );
  };

  const load = async () => {
    try {
      const { campaigns } = await getJson<{ campaigns: CampaignStatusJson[] }>("/api/campaigns");
      campaigns.sort((a, b) => (a.campaign.createdAt < b.campaign.createdAt ? 1 : -1));
      list.replaceChildren(...(campaigns.length ? campaigns.map(card) : [h("p", { class: "muted" }, "no campaigns yet")]));
      document.body.dataset.campaignsLoaded = String(campaigns.length);
    } catch (e) {
      list.replaceChildren(errorBox(e));
    }
  };

  const form = () => {
    const all = h("input", { type: "radio", name: "scope", value: "all", checked: true, "data-test": "scope-all" });
    const some = h("input", { type: "radio", name: "scope", value: "nodes", "data-test": "scope-nodes" });
    const names = h("textarea", { rows: 2, placeholder: "node names, separated by spaces or commas", "data-test": "campaign-nodes" });
    const maxInFlight = h("input", { type: "number", min: 1, max: 10000, value: 5, "data-test": "campaign-max" });
    const client = h("input", { type: "checkbox", checked: true, "data-test": "which-client" });
    const serving = h("input", { type: "checkbox", checked: true, "data-test": "which-serving" });
    const alg = h("select", { "data-test": "campaign-alg" }, ["", "ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096", "Ed25519"].map((a) => h("option", { value: a }, a || "keep each node's key algorithm")));
    const reason = h("input", { type: "text", value: "rotation requested from the dashboard", maxlength: 512, "data-test": "campaign-reason" });
    const start = h("button", {
      class: "primary",
      "data-test": "campaign-start",
      onclick: async (e: Event) => {
        e.preventDefault();
        const nodes = names.value.split(/[\s,]+/).filter(Boolean);
        const which = [client.checked && "client", serving.checked && "serving"].filter(Boolean);
        const body = { ...(all.checked ? { all: true } : { nodes }), maxInFlight: Number(maxInFlight.value), which, ...(alg.value ? { keyAlgorithm: alg.value } : {}), reason: reason.value };
        const scope = all.checked ? "every node that is not evicted" : `${nodes.length} node${nodes.length === 1 ? "" : "s"}`;
        if (!(await confirmAction(`Rotate the ${which.join(" and ")} certificates of ${scope}, ${maxInFlight.value} at a time?`))) return;
        try {
          const s = await postJson<CampaignStatusJson>("/api/campaigns", body);
          message.replaceChildren(h("div", { class: "ok", "data-test": "campaign-started" }, `campaign ${s.campaign.id} started`));
          await load();
        } catch (err) {
          message.replaceChildren(errorBox(err));
        }
      },
    }, "Start campaign…");
    return section(
      "Start a rotation campaign",
      h(
        "form",
        { class: "grid-form" },
        h("label", {}, all, " every node"),
        h("label", {}, some, " these nodes: ", names),
        h("label", {}, "at most ", maxInFlight, " nodes at a time"),
        h("label", {}, client, " client ", serving, " serving"),
        h("label", {}, "key algorithm ", alg),
        h("label", {}, "reason ", reason),
        start,
      ),
    );
  };

  return {
    title: "Campaigns",
    topics: ["campaigns"],
    async render(main) {
      clear(main);
      message = h("div");
      list = h("div", { class: "campaigns", "data-test": "campaign-list" });
      main.append(form(), message, section("Campaigns", list));
      await load();
    },
    onChange(topic) {
      if (topic === "campaigns") void load();
    },
  };
}

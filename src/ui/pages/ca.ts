// CA rotation: the phase, which nodes block the next one and why, and the advance action.
import type { CaRotationStatus } from "../../server/fleet/ca-rotation.js";
import { getJson, postJson } from "../api.js";
import { clear, fill, confirmAction, errorBox, fmtTime, h, section, table } from "../dom.js";
import type { Page } from "../page.js";

const NEXT: Record<string, string> = { prepare: "switch (sign with the new CA, re-issue every node)", switch: "finish (the old CA leaves the trust bundle)", finishing: "done" };

export function caPage(): Page {
  let body: HTMLElement;
  let message: HTMLElement;

  const act = async (question: string, path: string, payload: unknown) => {
    if (!(await confirmAction(question))) return;
    try {
      await postJson(path, payload);
      message.replaceChildren(h("div", { class: "ok" }, "done"));
      await load();
    } catch (e) {
      message.replaceChildren(errorBox(e));
    }
  };

  const draw = (s: CaRotationStatus) => {
    const r = s.rotation;
    const active = r && r.phase !== "done";
    const phase = r ? r.phase : "none";
    const buttons = h(
      "div",
      { class: "actions" },
      !active ? h("button", { class: "primary", "data-test": "ca-start", onclick: () => act("Start a CA rotation? A new CA is created and every node is given the old+new trust bundle.", "/api/ca/rotate", {}) }, "Start CA rotation…") : null,
      active ? h("button", { class: "primary", "data-test": "ca-advance", disabled: s.blockers.length > 0, onclick: () => act(`Advance the CA rotation from ${r!.phase} to ${NEXT[r!.phase]}?`, "/api/ca/advance", { force: false }) }, "Advance…") : null,
      active && s.blockers.length ? h("button", { class: "danger", "data-test": "ca-force", onclick: () => act(`Force the CA rotation past ${s.blockers.length} blocking node(s)? They may lose trust in the control plane.`, "/api/ca/advance", { force: true }) }, "Force advance…") : null,
    );
    fill(body,
      h(
        "div",
        { class: "cards" },
        h("div", { class: "card" }, "phase ", h("b", { "data-test": "ca-phase", "data-phase": phase }, phase)),
        h("div", { class: `card${s.blockers.length ? " bad" : ""}` }, h("b", { "data-test": "ca-blocker-count" }, String(s.blockers.length)), " nodes block the next phase"),
        h("div", { class: "card" }, h("b", {}, String(s.bundleCertificates)), " CAs in the trust bundle"),
      ),
      buttons,
      r
        ? section(
            "Rotation",
            table(
              ["", ""],
              [
                ["id", r.id],
                ["started", fmtTime(r.startedAt)],
                ["old CA (SHA-256)", h("code", {}, r.oldFingerprint)],
                ["new CA (SHA-256)", h("code", {}, r.newFingerprint)],
                ["re-issue campaign", r.campaignId ? h("a", { href: "#/campaigns" }, r.campaignId) : "-"],
                ["finished", fmtTime(r.finishedAt)],
                ["forced past", r.forced.length ? r.forced.join("; ") : "-"],
              ],
              { class: "kv" },
            ),
          )
        : h("p", { class: "muted" }, "No CA rotation has run. Starting one creates a new CA and moves through prepare → switch → finish; each phase advances when no node blocks it."),
      s.blockers.length ? section("Blocking the next phase", h("ul", { "data-test": "ca-blockers" }, s.blockers.slice(0, 1000).map((b) => h("li", {}, b)))) : null,
      section("Join pins", table(["Pin", "CA", "Valid for joins"], s.joinPins.map((p) => [h("code", {}, p.pin), p.subject, p.valid ? "yes" : `no: ${p.problem ?? ""}`]))),
    );
  };

  const load = async () => {
    try {
      draw(await getJson<CaRotationStatus>("/api/ca"));
      document.body.dataset.caLoaded = "1";
    } catch (e) {
      body.replaceChildren(errorBox(e));
    }
  };

  return {
    title: "CA rotation",
    topics: ["ca"],
    async render(main) {
      clear(main);
      message = h("div");
      body = h("div");
      main.append(message, body);
      await load();
    },
    onChange(topic) {
      if (topic === "ca") void load();
    },
  };
}

// DOM helpers for the dashboard. Text goes in as text nodes only (never HTML), so a node name or
// an agent's reported string can never become markup.
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (k === "class") el.className = String(v);
    else if (k === "value" && "value" in el) (el as HTMLInputElement).value = String(v);
    else if (k === "checked" && "checked" in el) (el as HTMLInputElement).checked = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces the children of `el` (null and false are skipped). */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  clear(el);
  append(el, children);
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** UTC minutes, e.g. 2026-12-02 14:05Z (what the tests read back). */
export function fmtTime(iso: string | undefined): string {
  if (!iso) return "-";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(0, 16).replace("T", " ") + "Z";
}

export function fmtRelative(iso: string | undefined, now: number): string {
  if (!iso) return "";
  const ms = Date.parse(iso) - now;
  const a = Math.abs(ms);
  const [n, u] = a < 90_000 ? [Math.round(a / 1000), "s"] : a < 5_400_000 ? [Math.round(a / 60_000), "min"] : a < 172_800_000 ? [Math.round(a / 3_600_000), "h"] : [Math.round(a / 86_400_000), "d"];
  return ms >= 0 ? `in ${n} ${u}` : `${n} ${u} ago`;
}

export function table(headers: string[], rows: Child[][], attrs: Attrs = {}): HTMLTableElement {
  return h("table", attrs, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))), h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

export function section(title: string, ...children: (Child | Child[])[]): HTMLElement {
  return h("section", {}, h("h2", {}, title), ...children);
}

export function errorBox(e: unknown): HTMLElement {
  return h("div", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e));
}

/** The in-page confirmation every action goes through. */
export function confirmAction(text: string): Promise<boolean> {
  const dialog = document.getElementById("confirm") as HTMLDialogElement;
  (document.getElementById("confirm-text") as HTMLElement).textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

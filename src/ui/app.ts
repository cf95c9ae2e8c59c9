// The dashboard's page: a hash router over the pages, and live updates over server-sent events
// (the dashboard process tells the page which topic changed; the page reads it again).
import "uplot/dist/uPlot.min.css";
import "./style.css";
import type { Page, Topic } from "./page.js";
import { fleetPage } from "./pages/fleet.js";
import { timelinePage } from "./pages/timeline.js";
import { campaignsPage } from "./pages/campaigns.js";
import { caPage } from "./pages/ca.js";
import { auditPage } from "./pages/audit.js";
import { nodePage } from "./pages/node.js";

const PAGES: Record<string, () => Page> = { fleet: fleetPage, timeline: timelinePage, campaigns: campaignsPage, ca: caPage, audit: auditPage, node: nodePage };
const pages = new Map<string, Page>();
let current: Page | undefined;

async function route(): Promise<void> {
  const [pathPart, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [key, ...rest] = pathPart.split("/");
  const id = PAGES[key] ? key : "fleet";
  const page = pages.get(id) ?? PAGES[id]();
  pages.set(id, page);
  current?.dispose?.();
  current = page;
  for (const a of Array.from(document.querySelectorAll("nav a"))) a.classList.toggle("active", (a as HTMLElement).dataset.page === id);
  document.title = `nodecert · ${page.title}`;
  // Each render draws into a new element: a page's reads still in flight when the operator moved
  // on land in a detached element, never over the page now shown.
  const main = document.createElement("div");
  document.getElementById("main")!.replaceChildren(main);
  document.body.dataset.page = id;
  // Each page marks itself loaded (data-<page>-loaded) once it drew what it read.
  for (const k of Object.keys(document.body.dataset)) if (k.endsWith("Loaded")) delete document.body.dataset[k];
  live(page.topics);
  await page.render(main, new URLSearchParams(query), rest.length ? decodeURIComponent(rest.join("/")) : undefined);
}

let stream: EventSource | undefined;
let streamTopics = "";

/** One event stream for the topics the current page shows (reopened when they differ). */
function live(topics: Topic[]): void {
  const key = topics.join(",");
  if (stream && key === streamTopics) return;
  stream?.close();
  streamTopics = key;
  const badge = document.getElementById("live")!;
  const es = new EventSource(`/api/events?topics=${encodeURIComponent(key)}`);
  stream = es;
  es.addEventListener("hello", () => {
    badge.textContent = "live";
    badge.className = "live on";
  });
  es.addEventListener("change", (e) => {
    const { topic } = JSON.parse((e as MessageEvent).data) as { topic: Topic };
    current?.onChange?.(topic);
  });
  es.onerror = () => {
    badge.textContent = "reconnecting…";
    badge.className = "live off";
  };
}

window.addEventListener("hashchange", () => void route());
void route();

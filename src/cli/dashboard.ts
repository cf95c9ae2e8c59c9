// `nodecert dashboard`: the fleet dashboard on the operator's machine (like `kubectl proxy`): a
// loopback web server that talks to the control plane's admin API with the admin certificate.
// The URL it prints holds a per-run token; it is printed once, to this terminal only.
import { spawn } from "node:child_process";
import type { CliEnv } from "./env.js";
import { parseListen } from "../config/listen.js";
import { parseDuration } from "../config/duration.js";
import { adminControlPlane } from "./dashboard/control-plane.js";
import { isLoopback, startDashboard, type RunningDashboard } from "./dashboard/server.js";

export interface DashboardOptions {
  dir: string;
  server?: string;
  listen: string;
  open?: boolean;
  refresh: string;
}

export async function dashboard(env: CliEnv, o: DashboardOptions): Promise<RunningDashboard> {
  const { host, port } = parseListen(o.listen);
  if (!isLoopback(host)) throw new Error(`--listen ${o.listen}: the dashboard listens on loopback only (127.0.0.1, [::1] or localhost); from another machine use an SSH tunnel (ssh -L 8080:127.0.0.1:8080 ...)`);
  const refresh = parseDuration(o.refresh ?? "5s");
  if (!(refresh >= 1000)) throw new Error(`--refresh ${o.refresh}: give a duration of at least 1s, e.g. 5s or 1m`);
  const controlPlane = await adminControlPlane(o.dir, o.server);
  const d = await startDashboard({ controlPlane, host, port, pollMs: { fleet: refresh }, onError: (what, e) => env.stderr.write(`dashboard: ${what}: ${e.message}\n`) });
  env.stdout.write(`nodecert dashboard for ${controlPlane.url}\nopen: ${d.loginUrl}\n(the URL holds this run's access token: anyone with it can act as the cluster admin until you stop the dashboard with Ctrl-C)\n`);
  if (o.open) {
    // A URL that works once: the browser's command line is visible to other users in ps.
    const child = spawn(env.env.BROWSER || "xdg-open", [d.oneTimeLoginUrl()], { stdio: "ignore", detached: true });
    child.on("error", (e) => env.stderr.write(`--open: cannot start ${env.env.BROWSER || "xdg-open"} (${e.message}): open the URL above yourself\n`));
    child.unref();
  }
  const stop = () => void d.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return d;
}

// host:port listen addresses ([v6]:port too). Pure; the agent uses it without the server config.
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`invalid listen address "${listen}": use host:port, e.g. 0.0.0.0:9443`);
  return { host: m[1] || "0.0.0.0", port: Number(m[2]) };
}

// `server:` in agent.yaml is one URL or a list (replicas of the control plane). Every caller that
// retries (renewal, re-join, the channel) already counts its consecutive failures and waits a
// jittered backoff between tries: attempt n goes to URL n mod N, so a dead replica costs one try
// and the next goes to another. After a success the count is 0 again: the first URL is preferred.
export function serverUrls(server: string | string[] | undefined): string[] {
  if (server === undefined) return [];
  return typeof server === "string" ? [server] : server;
}

/** The URL for the `attempt`-th consecutive try (0: the first listed). */
export function serverFor(server: string | string[] | undefined, attempt = 0): string | undefined {
  const urls = serverUrls(server);
  return urls.length ? urls[Math.abs(attempt) % urls.length] : undefined;
}

// kubelet.conf: both client cert and key point at kubelet-client-current.pem, as after kubelet rotation.
import YAML from "yaml";

export function kubeletKubeconfig(o: { server: string; caFile: string; clientPem: string }): string {
  return YAML.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "default-cluster", cluster: { "certificate-authority": o.caFile, server: o.server } }],
    contexts: [{ name: "default-context", context: { cluster: "default-cluster", namespace: "default", user: "default-auth" } }],
    "current-context": "default-context",
    preferences: {},
    users: [{ name: "default-auth", user: { "client-certificate": o.clientPem, "client-key": o.clientPem } }],
  });
}

// The node's on-disk layout (DESIGN.md), rooted at a configurable directory.
import path from "node:path";
import type { CertKind } from "../pki/csr.js";

export interface NodeLayout {
  root: string;
  pkiDir: string;
  kubernetesPkiDir: string;
  caFile: string;
  kubeconfig: string;
  stateDir: string;
  stateFile: string;
  /** The running agent's crypto report, for `nodecert status`. */
  cryptoFile: string;
  /** Why the last attempt to join failed, while there is no state yet to keep it in. */
  joinErrorFile: string;
  configDir: string;
  configFile: string;
  current(kind: CertKind): string;
  prefix(kind: CertKind): string;
}

/** `stateDir` moves the agent's own state (a snap keeps it in $SNAP_COMMON); kubelet files stay under root. */
export function nodeLayout(root: string, stateDir?: string): NodeLayout {
  const r = path.resolve(root);
  const state = stateDir ? path.resolve(stateDir) : path.join(r, "var/lib/nodecert");
  const pkiDir = path.join(r, "var/lib/kubelet/pki");
  const prefix = (kind: CertKind) => (kind === "client" ? "kubelet-client" : "kubelet-server");
  return {
    root: r,
    pkiDir,
    kubernetesPkiDir: path.join(r, "etc/kubernetes/pki"),
    caFile: path.join(r, "etc/kubernetes/pki/ca.crt"),
    kubeconfig: path.join(r, "etc/kubernetes/kubelet.conf"),
    stateDir: state,
    stateFile: path.join(state, "state.json"),
    cryptoFile: path.join(state, "crypto.json"),
    joinErrorFile: path.join(state, "join-error.json"),
    configDir: path.join(r, "etc/nodecert"),
    configFile: path.join(r, "etc/nodecert/agent.yaml"),
    current: (kind) => path.join(pkiDir, `${prefix(kind)}-current.pem`),
    prefix,
  };
}

export function layoutFor(config: { root: string; stateDir?: string }): NodeLayout {
  return nodeLayout(config.root, config.stateDir);
}

/** The unix socket `nodecert renew` reaches a running agent on. */
export function controlSocketPath(config: { controlSocket?: string }, layout: NodeLayout): string {
  return config.controlSocket ?? path.join(layout.stateDir, "control.sock");
}

// The CIS Kubernetes Benchmark worker-node checks that concern PKI and kubelet TLS, with
// kube-bench's ids and wording (cis-1.12 worker node, sections 4.1 and 4.2). Where nodecert
// manages the kubelet's certificates, 4.2.10/4.2.11 follow the benchmark's own note: they apply
// when the kubelet gets its certificates from the API server; a node whose certificates come from
// an outside tool must have that tool rotate them, which is what the audit verifies instead.
import { atMost, get, octal, rel, rootOwned, stat, underRoot, unitFlag, type FileFacts, type KubeletFiles } from "./node-files.js";
import type { CheckResult } from "./report.js";

export const BENCHMARKS = ["cis-1.12"] as const;

/** kube-bench's list for 4.2.12. */
export const STRONG_CIPHERS = [
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
  "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
  "TLS_RSA_WITH_AES_256_GCM_SHA384",
  "TLS_RSA_WITH_AES_128_GCM_SHA256",
];

/** What nodecert holds on this node: kubelet certificates it installed and rotates. */
export interface NodecertFacts {
  managesClient: boolean;
  managesServing: boolean;
  /** Where nodecert installs them (what the kubelet must read). */
  clientCurrent: string;
  servingCurrent: string;
}

const S41 = "4.1 Worker Node Configuration Files";
const S42 = "4.2 Kubelet";

type Partial = Omit<CheckResult, "section" | "id" | "text" | "type">;
const pass = (detail: string): Partial => ({ status: "PASS", detail, remediation: "" });
const fail = (detail: string, remediation: string): Partial => ({ status: "FAIL", detail, remediation });
const warn = (detail: string, remediation: string): Partial => ({ status: "WARN", detail, remediation });

function modeCheck(root: string, files: FileFacts[], max: number, what: string, missing: Partial): Partial {
  if (!files.length) return missing;
  const bad = files.filter((f) => !atMost(f, max));
  const list = files.map((f) => `${rel(root, f.path)} ${octal(f.mode)}`).join(", ");
  return bad.length ? fail(`${list}: more permissive than ${octal(max)}`, `chmod ${octal(max)} ${bad.map((f) => rel(root, f.path)).join(" ")}`) : pass(`${what}: ${list}`);
}

function ownerCheck(root: string, files: FileFacts[], what: string, missing: Partial): Partial {
  if (!files.length) return missing;
  const bad = files.filter((f) => !rootOwned(f));
  const list = files.map((f) => `${rel(root, f.path)} ${f.uid}:${f.gid}`).join(", ");
  return bad.length ? fail(`${list}: not root:root`, `chown root:root ${bad.map((f) => rel(root, f.path)).join(" ")}`) : pass(`${what}: ${list}`);
}

export async function cisChecks(k: KubeletFiles, nc: NodecertFacts): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const add = (id: string, section: string, type: CheckResult["type"], text: string, r: Partial) => out.push({ id, section, text, type, ...r });
  const unitMissing = warn("no kubelet unit found (looked for kubeadm's 10-kubeadm.conf drop-in and kubelet.service)", "point the audit at the node's root with --root, or check the kubelet unit by hand");
  const cfg = k.configDoc;
  const cfgRel = rel(k.root, k.configPath);
  const configMissing = k.config ? warn(`${cfgRel} is not a kubelet configuration: ${k.configError}`, `fix ${cfgRel}`) : warn(`${cfgRel} does not exist`, "run the kubelet with --config (kubeadm writes /var/lib/kubelet/config.yaml)");

  add("4.1.1", S41, "automated", "Ensure that the kubelet service file permissions are set to 600 or more restrictive (Automated)", modeCheck(k.root, k.units, 0o600, "kubelet unit", unitMissing));
  add("4.1.2", S41, "automated", "Ensure that the kubelet service file ownership is set to root:root (Automated)", ownerCheck(k.root, k.units, "kubelet unit", unitMissing));
  const kubeconfigMissing = warn(`${rel(k.root, k.kubeconfigPath)} does not exist`, "join the node ('nodecert join') so the kubelet's kubeconfig is written");
  add("4.1.5", S41, "automated", "Ensure that the --kubeconfig kubelet.conf file permissions are set to 600 or more restrictive (Automated)", modeCheck(k.root, k.kubeconfig ? [k.kubeconfig] : [], 0o600, "kubeconfig", kubeconfigMissing));
  add("4.1.6", S41, "automated", "Ensure that the --kubeconfig kubelet.conf file ownership is set to root:root (Automated)", ownerCheck(k.root, k.kubeconfig ? [k.kubeconfig] : [], "kubeconfig", kubeconfigMissing));

  const caSetting = (get(cfg, "authentication", "x509", "clientCAFile") as string | undefined) ?? unitFlag(k.unitText, "client-ca-file");
  const caFile = caSetting ? await stat(underRoot(k.root, caSetting)) : undefined;
  const caMissing = caSetting ? fail(`clientCAFile ${caSetting} does not exist`, `install the client CA at ${caSetting} ('nodecert join' writes /etc/kubernetes/pki/ca.crt)`) : warn("no clientCAFile is configured (see 4.2.3)", "set authentication.x509.clientCAFile in the kubelet configuration");
  add("4.1.7", S41, "manual", "Ensure that the certificate authorities file permissions are set to 644 or more restrictive (Manual)", modeCheck(k.root, caFile ? [caFile] : [], 0o644, "client CA file", caMissing));
  add("4.1.8", S41, "manual", "Ensure that the client certificate authorities file ownership is set to root:root (Manual)", ownerCheck(k.root, caFile ? [caFile] : [], "client CA file", caMissing));
  add("4.1.9", S41, "automated", "If the kubelet config.yaml configuration file is being used validate permissions set to 600 or more restrictive (Automated)", modeCheck(k.root, k.config ? [k.config] : [], 0o600, "kubelet configuration", configMissing));
  add("4.1.10", S41, "automated", "If the kubelet config.yaml configuration file is being used validate file ownership is set to root:root (Automated)", ownerCheck(k.root, k.config ? [k.config] : [], "kubelet configuration", configMissing));

  add("4.2.3", S42, "automated", "Ensure that the --client-ca-file argument is set as appropriate (Automated)", !caSetting ? fail("authentication.x509.clientCAFile is not set", `set authentication.x509.clientCAFile: /etc/kubernetes/pki/ca.crt in ${cfgRel}, then restart the kubelet`) : caFile ? pass(`clientCAFile: ${caSetting}`) : fail(`clientCAFile ${caSetting} does not exist`, `install the client CA at ${caSetting}`));

  const tlsCert = (get(cfg, "tlsCertFile") as string | undefined) ?? unitFlag(k.unitText, "tls-cert-file");
  const tlsKey = (get(cfg, "tlsPrivateKeyFile") as string | undefined) ?? unitFlag(k.unitText, "tls-private-key-file");
  const serverBootstrap = get(cfg, "serverTLSBootstrap") === true || unitFlag(k.unitText, "rotate-server-certificates") === "true";
  const nodecertServing = rel(k.root, nc.servingCurrent);
  let r429: Partial;
  if (!tlsCert || !tlsKey) r429 = fail(`tlsCertFile ${tlsCert ?? "unset"}, tlsPrivateKeyFile ${tlsKey ?? "unset"}`, `set tlsCertFile and tlsPrivateKeyFile to ${nodecertServing} in ${cfgRel} ('nodecert kubelet configure --write'), then restart the kubelet`);
  else if (!(await stat(underRoot(k.root, tlsCert))) || !(await stat(underRoot(k.root, tlsKey)))) r429 = fail(`tlsCertFile ${tlsCert} or tlsPrivateKeyFile ${tlsKey} does not exist`, `point them at ${nodecertServing} ('nodecert kubelet configure --write')`);
  else if (nc.managesServing && (tlsCert !== nodecertServing || tlsKey !== nodecertServing)) r429 = warn(`tlsCertFile ${tlsCert}, tlsPrivateKeyFile ${tlsKey}: not the serving certificate nodecert installs and rotates (${nodecertServing})`, "'nodecert kubelet configure --write' points them at it");
  else if (nc.managesServing && serverBootstrap) r429 = warn(`tlsCertFile/tlsPrivateKeyFile set, but serverTLSBootstrap: true makes the kubelet ignore them`, `set serverTLSBootstrap: false ('nodecert kubelet configure --write')`);
  else r429 = pass(`tlsCertFile ${tlsCert}, tlsPrivateKeyFile ${tlsKey}`);
  add("4.2.9", S42, "manual", "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate (Manual)", r429);

  const rotate = get(cfg, "rotateCertificates") ?? (unitFlag(k.unitText, "rotate-certificates") === undefined ? undefined : unitFlag(k.unitText, "rotate-certificates") !== "false");
  let r4210: Partial;
  if (nc.managesClient) {
    r4210 = rotate === true
      ? warn("rotateCertificates: true while nodecert rotates the client certificate: two rotators write kubelet-client-current.pem", `set rotateCertificates: false in ${cfgRel} ('nodecert kubelet configure --write'): nodecert rotates the client certificate`)
      : pass(`the client certificate is rotated by nodecert (${rel(k.root, nc.clientCurrent)}); rotateCertificates: ${String(rotate ?? false)} keeps the kubelet from rotating the same file, as the benchmark's note on outside tools allows`);
  } else {
    r4210 = rotate === false || rotate === undefined ? fail(`rotateCertificates is ${rotate === undefined ? "not set (the kubelet's default is false)" : "false"} and nodecert does not manage the client certificate`, `set rotateCertificates: true in ${cfgRel}, or let nodecert rotate the client certificate ('nodecert join')`) : pass("rotateCertificates: true");
  }
  add("4.2.10", S42, "automated", "Ensure that the --rotate-certificates argument is not set to false (Automated)", r4210);

  const gates = { ...(get(cfg, "featureGates") as Record<string, unknown> | undefined) };
  const flagGate = /RotateKubeletServerCertificate=(true|false)/.exec(unitFlag(k.unitText, "feature-gates") ?? "");
  const gate = flagGate ? flagGate[1] === "true" : (gates.RotateKubeletServerCertificate as boolean | undefined);
  let r4211: Partial;
  if (nc.managesServing && !serverBootstrap) r4211 = pass(`the serving certificate is rotated by nodecert (${nodecertServing}), as the benchmark's note on outside tools allows`);
  else if (gate === false) r4211 = fail("featureGates RotateKubeletServerCertificate=false", `remove RotateKubeletServerCertificate=false from ${cfgRel} and the unit's --feature-gates`);
  else if (serverBootstrap) r4211 = pass(`serverTLSBootstrap: true; RotateKubeletServerCertificate ${gate === undefined ? "on by default" : "true"}`);
  else r4211 = fail("nothing rotates the kubelet's serving certificate: nodecert does not manage it and serverTLSBootstrap is off", "join the node with nodecert (it rotates the serving certificate), or set serverTLSBootstrap: true");
  add("4.2.11", S42, "manual", "Verify that the RotateKubeletServerCertificate argument is set to true (Manual)", r4211);

  const ciphers = (get(cfg, "tlsCipherSuites") as string[] | undefined) ?? unitFlag(k.unitText, "tls-cipher-suites")?.split(",");
  const minVersion = (get(cfg, "tlsMinVersion") as string | undefined) ?? unitFlag(k.unitText, "tls-min-version");
  let r4212: Partial;
  if (ciphers?.length) {
    const weak = ciphers.filter((c) => !STRONG_CIPHERS.includes(c));
    r4212 = weak.length ? fail(`tlsCipherSuites includes ${weak.join(", ")}`, `set tlsCipherSuites to a subset of ${STRONG_CIPHERS.join(",")} in ${cfgRel}`) : pass(`tlsCipherSuites: ${ciphers.join(",")}`);
  } else if (minVersion === "VersionTLS13") r4212 = pass("tlsMinVersion: VersionTLS13 (TLS 1.3 offers only strong suites; tlsCipherSuites does not apply)");
  else r4212 = warn("tlsCipherSuites is not set: the kubelet uses Go's default list", `set tlsCipherSuites: [${STRONG_CIPHERS.slice(0, 6).join(", ")}] or tlsMinVersion: VersionTLS13 in ${cfgRel}`);
  add("4.2.12", S42, "manual", "Ensure that the Kubelet only makes use of Strong Cryptographic Ciphers (Manual)", r4212);
  return out;
}

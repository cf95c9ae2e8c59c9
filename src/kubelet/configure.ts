// What a kubelet's KubeletConfiguration must say for nodecert to manage its certificates, as a
// plan over the file's text (pure: text in, plan out). The YAML document is edited in place, so
// comments, order and the other fields stay as they are; new keys go where they sort in kubeadm's
// alphabetical file.
//  - tlsCertFile / tlsPrivateKeyFile -> kubelet-server-current.pem (CIS 4.2.9): the kubelet
//    (>= 1.31, ReloadKubeletServerCertificateFile) reloads the pair when nodecert swaps it.
//  - serverTLSBootstrap off: with it on the kubelet ignores those files and asks the certificates API.
//  - rotateCertificates off: nodecert rotates kubelet-client-current.pem; the kubelet's own client
//    rotation would write the same file with certificates from another signer (CIS 4.2.10 is met
//    by nodecert's rotation, the benchmark's note on outside tools).
//  - authentication.x509.clientCAFile set (CIS 4.2.3) when it is missing.
import { isMap, isScalar, parseDocument, Scalar, type Document, type YAMLMap } from "yaml";

export const SERVING_CURRENT = "/var/lib/kubelet/pki/kubelet-server-current.pem";
export const DEFAULT_CLIENT_CA = "/etc/kubernetes/pki/ca.crt";

export interface Change {
  key: string;
  from: unknown;
  to: unknown;
  why: string;
}

export interface KubeletConfigPlan {
  changes: Change[];
  /** The file as it should be (equal to the input when nothing changes). */
  text: string;
  /** Things left as they are on purpose, said to the operator. */
  notes: string[];
}

export class KubeletConfigError extends Error {}

export function planKubeletConfig(text: string, o: { servingFile?: string; clientCaFile?: string } = {}): KubeletConfigPlan {
  const serving = o.servingFile ?? SERVING_CURRENT;
  const doc = parseDocument(text, { keepSourceTokens: true });
  if (doc.errors.length) throw new KubeletConfigError(`not valid YAML: ${doc.errors[0].message.split("\n")[0]}`);
  if (!isMap(doc.contents)) throw new KubeletConfigError("not a KubeletConfiguration: the document is not a mapping");
  const kind = doc.get("kind");
  if (kind !== undefined && kind !== "KubeletConfiguration") throw new KubeletConfigError(`not a KubeletConfiguration: kind is ${String(kind)}`);
  const changes: Change[] = [];
  const notes: string[] = [];
  const set = (path: string[], to: unknown, why: string) => {
    const from = doc.getIn(path);
    if (from === to) return;
    changes.push({ key: path.join("."), from, to, why });
    setSorted(doc, path, to);
  };
  set(["tlsCertFile"], serving, "CIS 4.2.9: the kubelet serves the certificate nodecert installs and rotates (and reloads it when the file changes)");
  set(["tlsPrivateKeyFile"], serving, "CIS 4.2.9: the key is in the same file as the certificate");
  if (doc.get("serverTLSBootstrap") === true) set(["serverTLSBootstrap"], false, "with serverTLSBootstrap the kubelet ignores tlsCertFile and asks the certificates API instead");
  if (doc.get("rotateCertificates") === true) set(["rotateCertificates"], false, "nodecert rotates kubelet-client-current.pem; the kubelet's own rotation would write the same file (CIS 4.2.10 is met by nodecert)");
  const ca = doc.getIn(["authentication", "x509", "clientCAFile"]);
  if (ca === undefined || ca === null || ca === "") set(["authentication", "x509", "clientCAFile"], o.clientCaFile ?? DEFAULT_CLIENT_CA, "CIS 4.2.3: the kubelet authenticates its clients (the API server) against the cluster CA");
  else if (o.clientCaFile && ca !== o.clientCaFile) notes.push(`authentication.x509.clientCAFile stays ${String(ca)}: it names the CA of the kubelet's clients, which nodecert does not manage`);
  const gates = doc.getIn(["featureGates", "RotateKubeletServerCertificate"]);
  if (gates === false) notes.push("featureGates.RotateKubeletServerCertificate is false: harmless with nodecert (it rotates the serving certificate), but CIS 4.2.11 scanners that do not know nodecert will flag it");
  return { changes, text: changes.length ? doc.toString({ lineWidth: 0, indentSeq: false }) : text, notes };
}

/** Sets a nested value; a new key goes where it sorts if the mapping's keys are sorted (kubeadm's files are). */
function setSorted(doc: Document, path: string[], value: unknown): void {
  let map = doc.contents as YAMLMap;
  for (let i = 0; i < path.length; i++) {
    const key = path[i];
    const last = i === path.length - 1;
    const existing = map.get(key, true);
    if (last && existing !== undefined && isScalar(existing)) {
      (existing as Scalar).value = value;
      return;
    }
    if (!last && isMap(existing)) {
      map = existing as YAMLMap;
      continue;
    }
    const node = last ? doc.createNode(value) : doc.createNode({});
    const keys = map.items.map((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)));
    const sorted = keys.every((k, j) => j === 0 || keys[j - 1] <= k);
    const pair = doc.createPair(key, node);
    if (existing !== undefined) map.set(key, node);
    else if (sorted) map.items.splice(keys.filter((k) => k < key).length, 0, pair);
    else map.items.push(pair);
    if (last) return;
    map = node as YAMLMap;
  }
}

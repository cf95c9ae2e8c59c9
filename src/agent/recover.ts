// Startup recovery: finish an interrupted install, drop temp files, and repair a `current`
// symlink that is missing or points at a broken pair by falling back to the newest valid file.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { NodeLayout } from "./layout.js";
import type { CertKind } from "../pki/csr.js";
import { recoverPendingInstall } from "./apply.js";
import { timestampedFiles } from "./prune.js";
import { privateKeyBlock, splitCertificates } from "../pki/pem.js";
import { certificateInfo, EKU_CLIENT_AUTH, EKU_SERVER_AUTH } from "../pki/certificate-info.js";
import { keyMatchesCertificate } from "../pki/verify.js";
import { replaceSymlink, TMP_MARKER } from "../platform/files.js";
import { readCurrentOutcome } from "./install.js";

function wholePair(pem: string): boolean {
  const key = privateKeyBlock(pem);
  return !!key && keyMatchesCertificate(pem, key);
}

/** Whole, and of its kind: a client link pointing at the serving pair is broken too. */
function validPair(pem: string | undefined, kind: CertKind): boolean {
  if (!pem || !wholePair(pem)) return false;
  try {
    return certificateInfo(splitCertificates(pem)[0]).extendedKeyUsages.includes(kind === "client" ? EKU_CLIENT_AUTH : EKU_SERVER_AUTH);
  } catch {
    return false;
  }
}

export async function recoverOnStartup(layout: NodeLayout, now: Date): Promise<string[]> {
  const actions: string[] = [];
  for (const dir of [layout.pkiDir, layout.stateDir, path.dirname(layout.kubeconfig), layout.kubernetesPkiDir]) {
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (const n of names.filter((x) => x.startsWith(TMP_MARKER))) {
      await fs.rm(path.join(dir, n), { force: true });
      actions.push(`removed leftover temp file ${path.join(dir, n)}`);
    }
  }
  if (await recoverPendingInstall(layout, now)) actions.push("finished an install interrupted by a restart");
  for (const kind of ["client", "serving"] as CertKind[]) {
    const read = await readCurrentOutcome(layout, kind);
    // Unreadable (EACCES, EIO) is not broken: pointing it at an older file would hand the node a
    // certificate its lineage may have retired. Leave it and say so; the renewer reports it too.
    if (read.state === "unreadable") {
      actions.push(`left ${path.basename(layout.current(kind))} as it is: ${read.reason}`);
      continue;
    }
    const cur = read.state === "present" ? read.pem : undefined;
    if (validPair(cur, kind)) continue;
    const names = timestampedFiles(await fs.readdir(layout.pkiDir).catch(() => []), layout.prefix(kind)).reverse();
    for (const n of names) {
      if (validPair(await fs.readFile(path.join(layout.pkiDir, n), "utf8").catch(() => undefined), kind)) {
        await replaceSymlink(layout.current(kind), n);
        actions.push(`pointed ${path.basename(layout.current(kind))} at ${n} (the previous target was ${!cur ? "missing" : wholePair(cur) ? "a pair of another kind: wrong extended key usage" : "broken"})`);
        break;
      }
    }
  }
  return actions;
}

// Where the server keeps its state inside its directory.
import path from "node:path";

export interface ServerPaths {
  dir: string;
  config: string;
  caDir: string;
  caCert: string; // signing CA first, then its chain up to (not including) the anchors
  caKeyEnc: string;
  caBundle: string; // trust anchors handed to nodes
  kek: string;
  tlsDir: string;
  tlsCert: string;
  tlsKey: string;
  adminDir: string;
  adminCert: string;
  adminKey: string;
  adminCa: string;
  adminServerUrl: string; // file holding the URL admin commands use
  db: string;
}

export function serverPaths(dir: string, env: NodeJS.ProcessEnv = process.env): ServerPaths {
  const d = path.resolve(dir);
  // systemd's LoadCredential= hands the key-encryption key over in $CREDENTIALS_DIRECTORY.
  const kek = env.CREDENTIALS_DIRECTORY ? path.join(env.CREDENTIALS_DIRECTORY, "kek") : path.join(d, "kek");
  return {
    dir: d,
    config: path.join(d, "server.yaml"),
    caDir: path.join(d, "ca"),
    caCert: path.join(d, "ca", "ca.crt"),
    caKeyEnc: path.join(d, "ca", "ca.key.enc"),
    caBundle: path.join(d, "ca", "bundle.crt"),
    kek,
    tlsDir: path.join(d, "tls"),
    tlsCert: path.join(d, "tls", "server.crt"),
    tlsKey: path.join(d, "tls", "server.key"),
    adminDir: path.join(d, "admin"),
    adminCert: path.join(d, "admin", "admin.crt"),
    adminKey: path.join(d, "admin", "admin.key"),
    adminCa: path.join(d, "admin", "ca.crt"),
    adminServerUrl: path.join(d, "admin", "server-url"),
    db: path.join(d, "nodecert.db"),
  };
}

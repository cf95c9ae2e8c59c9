// certificate-info reads certificates with Node's own X509Certificate: the names, SANs and
// extensions of certificates made by the openssl CLI, including values that need escaping.
import { strict as assert } from "node:assert";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { certificateInfo, parseNodeName, parseSubjectAltName, EKU_CLIENT_AUTH, EKU_SERVER_AUTH } from "../../src/pki/certificate-info.js";
import { requireTool, run, tempDir } from "../support/helpers.js";

async function opensslCert(config: string, extraArgs: string[] = []): Promise<string> {
  const dir = tempDir();
  writeFileSync(path.join(dir, "req.cnf"), config);
  const r = await run("openssl", ["req", "-utf8", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"), "-days", "2", "-config", path.join(dir, "req.cnf"), ...extraArgs]);
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(path.join(dir, "cert.pem"), "utf8");
}

describe("pki/certificate-info (node:crypto X509Certificate)", () => {
  it("reads a node certificate's subject, SANs, EKU, CA flag, serial and validity", async function () {
    requireTool(this, "openssl");
    const pem = await opensslCert(
      "[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=ext\n[dn]\nO=system:nodes\nCN=system:node:n1\n" +
        "[ext]\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:N1.Example,IP:10.0.0.7,IP:2001:db8::1\n",
      ["-set_serial", "0x00ab12"],
    );
    const i = certificateInfo(pem);
    assert.equal(i.subject, "O=system:nodes, CN=system:node:n1");
    assert.equal(i.subjectCN, "system:node:n1");
    assert.deepEqual(i.subjectO, ["system:nodes"]);
    assert.equal(i.issuer, i.subject);
    assert.deepEqual(i.sans, { dns: ["n1.example"], ip: ["10.0.0.7", "2001:db8::1"] });
    assert.deepEqual(i.extendedKeyUsages, [EKU_SERVER_AUTH, EKU_CLIENT_AUTH]);
    assert.equal(i.isCA, false);
    assert.equal(i.serial, "ab12");
    assert.equal(i.keyAlgorithm, "ECDSA-P256");
    assert.ok(i.selfSigned);
    assert.equal(i.notAfter.getTime() - i.notBefore.getTime(), 2 * 86_400_000);
    assert.match(i.spkiPin, /^sha256:[0-9a-f]{64}$/);
  });

  it("unescapes subject values and never takes a SAN from inside a quoted value or a directory name", async function () {
    requireTool(this, "openssl");
    const pem = await opensslCert(
      "[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=ext\n[dn]\nCN=weird, name + O=x\n0.O=α β\n1.O=second\n" +
        "[ext]\nbasicConstraints=critical,CA:TRUE\nsubjectAltName=@alt\n[alt]\nDNS.1=ok.example\nDNS.2=comma,DNS:evil.example\ndirName.1=dir_sect\nemail.1=a@b\n[dir_sect]\nCN=x, DNS:injected.example\n",
    );
    const i = certificateInfo(pem);
    assert.equal(i.subjectCN, "weird, name + O=x");
    assert.deepEqual(i.subjectO, ["α β", "second"], "an O= inside the CN value is not an O");
    assert.deepEqual(i.sans.dns, ["comma,dns:evil.example", "ok.example"], "a SAN with a comma stays one SAN");
    assert.equal(i.isCA, true);
    assert.deepEqual(i.extendedKeyUsages, []);
  });

  it("parses Node's printed forms: multi-valued RDNs, escapes, JSON-quoted SAN values", () => {
    assert.deepEqual(parseNodeName("O=a\\, b\nCN=x + OU=y\\+z\nL=\\0Aline").rdns, [
      [{ type: "O", value: "a, b" }],
      [
        { type: "CN", value: "x" },
        { type: "OU", value: "y+z" },
      ],
      [{ type: "L", value: "\nline" }],
    ]);
    assert.equal(parseNodeName("O=a\\, b\nCN=x + OU=y").text, "O=a\\, b, CN=x+OU=y");
    assert.deepEqual(parseSubjectAltName('DNS:a, DNS:"b, DNS:c", IP Address:10.0.0.1, DirName:"CN=d\\\\, DNS:e"'), [
      { type: "DNS", value: "a" },
      { type: "DNS", value: "b, DNS:c" },
      { type: "IP Address", value: "10.0.0.1" },
      { type: "DirName", value: "CN=d\\, DNS:e" },
    ]);
  });
});

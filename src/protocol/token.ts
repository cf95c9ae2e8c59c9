// The bootstrap token format, "[a-z0-9]{6}.[a-z0-9]{16}" (kubeadm's): one definition for the
// server that parses tokens, the CLI that checks them and the logger that redacts them. No I/O.
const ID = "[a-z0-9]{6}";
const SECRET = "[a-z0-9]{16}";

/** A whole token: id and secret captured. */
export const TOKEN_RE = new RegExp(`^(${ID})\\.(${SECRET})$`);

/** Every token inside a longer text (redaction); global, so use it with replace, not test. */
export const TOKEN_IN_TEXT_RE = new RegExp(`\\b${ID}\\.${SECRET}\\b`, "g");

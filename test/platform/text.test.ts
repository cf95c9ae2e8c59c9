import { strict as assert } from "node:assert";
import { escapeJsonText, escapeTerminal, terminalJson } from "../../src/platform/text.js";

describe("platform/text: node-fed text on the operator's terminal", () => {
  it("escapes C0, DEL, C1 and the backslash, and nothing else", () => {
    const hostile = "0.1\x1b[2J\x1b[1A\x1b[2K\x1b]0;pwned\x07\x9b31m\x7f\r\n\t\\ é ✓";
    assert.equal(escapeTerminal(hostile), "0.1\\x1b[2J\\x1b[1A\\x1b[2K\\x1b]0;pwned\\x07\\x9b31m\\x7f\\x0d\\x0a\\x09\\\\ é ✓");
    for (let c = 0; c <= 0x9f; c++) {
      const ch = String.fromCharCode(c);
      const out = escapeTerminal(ch);
      const control = c < 0x20 || (c >= 0x7f && c <= 0x9f);
      if (control) assert.equal(out, `\\x${c.toString(16).padStart(2, "0")}`);
      else if (ch === "\\") assert.equal(out, "\\\\");
      else assert.equal(out, ch);
    }
    assert.equal(escapeTerminal("plain text"), "plain text");
  });

  it("JSON for a terminal holds no raw control character and parses back to the same value", () => {
    const value = { v: "a\x7fb\x85c\x9bd\x1be", n: 1 };
    const text = terminalJson(value);
    assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    assert.deepEqual(JSON.parse(text), value);
    assert.equal(escapeJsonText('"\x9b"'), '"\\u009b"');
  });
});

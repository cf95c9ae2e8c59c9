// Text from nodes on the operator's terminal. Pure.
//
// A node controls strings that reach tables and logs (its agent version, an ack's error text, a
// reported key algorithm). Raw, an ESC, CSI (0x9b) or OSC sequence in one could erase lines,
// move the cursor, clear the screen or set the window title. Every control character is shown
// as a visible escape instead, and a backslash as two, so the output is unambiguous.

// C0 (0x00-0x1f), DEL (0x7f), C1 (0x80-0x9f) and the backslash itself.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\\\u0000-\u001f\u007f-\u009f]/g;

/** `s` with every control character as \xNN (and \ as \\): safe to print in a table or a line. */
export function escapeTerminal(s: string): string {
  return s.replace(CONTROL, (c) => (c === "\\" ? "\\\\" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`));
}

// JSON.stringify escapes C0 but leaves DEL and C1 raw; \u escapes keep the JSON's value intact.
const JSON_RAW_CONTROL = /[\u007f-\u009f]/g;

/** JSON text with DEL and C1 characters \u-escaped, so it is safe on a terminal and parses to the same value. */
export function escapeJsonText(json: string): string {
  return json.replace(JSON_RAW_CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** JSON.stringify for a terminal: the same value, no raw control character in the text. */
export function terminalJson(value: unknown, indent = 2): string {
  return escapeJsonText(JSON.stringify(value, null, indent));
}

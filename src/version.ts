// This release. A leaf module: `nodecert --version` and the channel's hello read it without loading anything else.
export const AGENT_VERSION = "0.1.0";

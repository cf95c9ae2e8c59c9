// Moved to pki/x509-provider.ts (pki sits below crypto); kept so existing importers still resolve.
export { x509, crypto, subtle } from "../pki/x509-provider.js";

// Defaults of server.yaml that the server's modules share with the schema (config/server.ts):
// defined here, below both, so configuration never imports the server.
import type { KeyAlgorithm } from "../pki/key-algorithms.js";

export interface HttpLimits {
  /** TLS handshake plus request headers must arrive within this. */
  headersTimeout: number;
  /** The whole request (headers and body) must arrive within this; also the socket inactivity limit. */
  requestTimeout: number;
  /** A keep-alive connection with no request in flight is closed after this. */
  idleTimeout: number;
  /** Connections one source may hold open that are not (yet) an authenticated fleet channel. */
  maxConnectionsPerSource: number;
  /** IPv6 sources are keyed by this prefix length (one host usually owns a /64). */
  ipv6SourcePrefix: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  idleTimeout: 5_000,
  maxConnectionsPerSource: 256,
  ipv6SourcePrefix: 64,
};

export interface ChannelLimits {
  /** Sustained messages per second per connection. */
  messageRate: number;
  /** Messages a connection may send at once before the rate applies. */
  messageBurst: number;
  /** Bytes queued for a peer that does not read, before it is disconnected. */
  maxBufferedBytes: number;
}

export const DEFAULT_CHANNEL_LIMITS: ChannelLimits = { messageRate: 10, messageBurst: 50, maxBufferedBytes: 1024 * 1024 };

/** The approval policy's defaults (server/policy.ts types the whole policy). */
export interface PolicyDefaults {
  allowedCidrs: string[];
  allowedDnsPatterns: string[];
  minRsaBits: number;
  allowedKeyAlgorithms: KeyAlgorithm[];
  serviceCidrs: string[];
  allowLoopbackSans: boolean;
  allowLinkLocalSans: boolean;
  nodeGroups: never[];
}

export const POLICY_DEFAULTS: PolicyDefaults = {
  allowedCidrs: ["0.0.0.0/0", "::/0"],
  allowedDnsPatterns: ["^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"],
  minRsaBits: 2048,
  allowedKeyAlgorithms: ["ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096", "Ed25519"],
  serviceCidrs: ["10.96.0.0/12"],
  allowLoopbackSans: false,
  allowLinkLocalSans: false,
  nodeGroups: [],
};

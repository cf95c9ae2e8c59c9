// Renewal lineage: which of a node's client certificates may still act for it. Pure.
//
// The confirmed serial is the newest client certificate the node has proven it holds (it
// renewed with it or opened the fleet channel with it). The node may use that one, or the newest
// issued (the answer to its last renewal may have been lost). Once the successor has been used,
// every predecessor is dead: a copy of an old certificate (a backup, a disk image, a file kept
// by keepFiles) can neither renew nor connect, and cannot lock out the node that holds the newest.

export interface Lineage {
  /** The node's newest issued client certificate. */
  newest?: string;
  /** The newest one it has proven it holds. */
  confirmed?: string;
}

export function mayActForNode(serial: string, l: Lineage): boolean {
  return serial === l.newest || serial === l.confirmed;
}

import type { DpState } from './state.js'

/**
 * A link point as events name it.
 *
 * @public
 */
export interface LinkEventRef {
  readonly namespace: string
  readonly path: string
}

/**
 * A share as events name it.
 *
 * @public
 */
export interface ShareEventRef {
  readonly site: string
  readonly share: string
}

/**
 * Why a share probe failed: the share was deleted, its volume is offline, the probe's rights were refused, it
 * did not answer within the probe timeout, or the storage adapter could not be reached at all.
 *
 * @public
 */
export type ProbeFailure = 'deleted' | 'offline' | 'accessDenied' | 'timeout' | 'unreachable'

/**
 * The events of the namespace module. Every one is also recorded in the state store (see
 * `namespace.history`) and handed to the notifier.
 *
 * @public
 */
export type NamespaceEvents = {
  /** drkit started managing a namespace (adopting the links the server had). */
  'namespace.created': { namespace: string; adoptedLinks: number }
  /** A folder or link was created, renamed, moved or deleted, or a link's targets changed. */
  'namespace.changed': LinkEventRef & { change: 'created' | 'moved' | 'deleted' | 'targetsChanged'; to?: string }
  /** drkit's copy of a namespace was written to the namespace server. */
  'namespace.pushed': { namespace: string; version: number }
  /**
   * The namespace server's copy differs from drkit's at links drkit was not changing (edited outside drkit, or a
   * push lost in a crash): `links` of them, the first of which are listed. They are left as the server has them;
   * `namespace.push` rewrites the server's copy from drkit's.
   */
  'namespace.driftDetected': { namespace: string; version: number; links: number; paths: readonly string[] }
  /** A policy was created or edited. */
  'namespace.policySaved': { policy: string; id: string; created: boolean; links: number }
  /** A policy was deleted. */
  'namespace.policyDeleted': { policy: string; id: string }
  /** A link point was associated with a policy, a mirror and a destination share. */
  'namespace.linkProtected': LinkEventRef & { policy: string; mirrorId: string; primary: ShareEventRef; destination: ShareEventRef }
  /** A link point's protection was removed. */
  'namespace.linkUnprotected': LinkEventRef
  /** A primary share was declared inaccessible after the policy's consecutive failed probes or timer. */
  'namespace.shareInaccessible': ShareEventRef & { reason: ProbeFailure | 'reported'; failures: number; links: readonly string[] }
  /** A share that had failed probes answers again. */
  'namespace.shareRecovered': ShareEventRef & { links: readonly string[] }
  /** A link's primary failed and its policy (or a disabled secondary) leaves the failover to an operator. */
  'namespace.failoverRequired': LinkEventRef & { primary: ShareEventRef; reason: string }
  /** A failover of a link point began. */
  'namespace.failoverStarted': LinkEventRef & { workflowId: string; manual: boolean }
  /** The destination share was created (exported) on the mirror's destination volume. */
  'namespace.destinationShareCreated': ShareEventRef & { volume: string }
  /** A link point now refers to its destination share. */
  'namespace.linkFailedOver': LinkEventRef & { from: ShareEventRef; to: ShareEventRef; mirrorFailedOver: boolean; workflowId: string }
  /**
   * A failover stopped. The link refers to its primary share again (`state: 'failoverError'`), or, when it had
   * been switched and its mirror promoted, so that going back would split the data, stays on its destination
   * share (`state: 'failedOver'`).
   */
  'namespace.failoverFailed': LinkEventRef & { workflowId: string; code: string; message: string; state: DpState }
  /** A pre- or post-failover hook failed, timed out, or could not be run. */
  'namespace.hookFailed': LinkEventRef & { phase: 'pre' | 'post'; exitCode: number | null; timedOut: boolean; message: string; aborted: boolean }
  /** The destination share of a link is inaccessible: the link is no longer data protected. */
  'namespace.protectionDisabled': LinkEventRef & { destination: ShareEventRef; reason: string }
  /** The destination share of a link is accessible again: the link is data protected again. */
  'namespace.protectionEnabled': LinkEventRef & { destination: ShareEventRef }
  /** A failed-over link point refers to its original primary share again. */
  'namespace.linkFailedBack': LinkEventRef & { from: ShareEventRef; to: ShareEventRef; workflowId: string }
  /** A failback stopped; the link refers to its destination share (`failedOver`) or already to its primary (`protected`). */
  'namespace.failbackFailed': LinkEventRef & { workflowId: string; code: string; message: string; state: DpState }
  /** A volume's used space crossed a threshold monitor's limit. */
  'namespace.outOfSpace': { threshold: string; site: string; volume: string; usedPercent: number; above: number }
  /** A volume's used space went back to or below a threshold monitor's limit. */
  'namespace.spaceRecovered': { threshold: string; site: string; volume: string; usedPercent: number; above: number }
  /** A threshold monitor could not read a site's volumes. */
  'namespace.thresholdFailed': { threshold: string; site: string; code: string; message: string }
}

/**
 * The network service every site's mirror agent listens on.
 *
 * @public
 */
export const MIRROR_SERVICE = 'drkit.mirror'

/**
 * Label keys stamped on every snapshot the mirror takes, so that a volume's mirror history (delta-set number,
 * base, epoch, cut time, restart-point stamp) can be read back from storage.
 *
 * @public
 */
export const MIRROR_LABEL = {
  session: 'drkit.mirror.session',
  deltaSet: 'drkit.mirror.deltaSet',
  base: 'drkit.mirror.base',
  baseDeltaSet: 'drkit.mirror.baseDeltaSet',
  epoch: 'drkit.mirror.epoch',
  cutAt: 'drkit.mirror.cutAt',
  kind: 'drkit.mirror.kind',
  lastApplied: 'drkit.mirror.lastApplied',
  mode: 'drkit.mirror.mode',
} as const

/**
 * Configuration-record keys the agents keep on the volumes they serve.
 *
 * @public
 */
export const MIRROR_CONFIG = {
  /** The session record of the volume (role, epoch, peer, base). */
  session: 'drkit.mirror.session',
  /** Progress of a delta set received in place (a full copy, or applied on arrival) or of an undo, for resumption. */
  progress: 'drkit.mirror.progress',
  /** The staging index, on the staging volume. */
  staging: 'drkit.mirror.staging',
} as const

/**
 * The name of cut (source) or applied-state (destination) snapshot number `n` of session `session`: both sides
 * of a relationship hold a snapshot of this name with the same contents once `n` is played back.
 *
 * @public
 */
export function deltaSetSnapshot(session: string, n: number): string {
  return `drkit.m.${session}.ds-${n}`
}

/**
 * The name of the restart-point snapshot a failover leaves on the new primary at `epoch`.
 *
 * @public
 */
export function restartPointSnapshot(session: string, epoch: number): string {
  return `drkit.m.${session}.rp-${epoch}`
}

/**
 * The name of the snapshot a resync takes of the old source before undoing its changes (kept, held, when the
 * caller asked for a safety snapshot; deleted otherwise).
 *
 * @public
 */
export function undoSnapshot(session: string, epoch: number): string {
  return `drkit.m.${session}.undo-${epoch}`
}

/** The prefix of every snapshot name the session owns. */
export function sessionSnapshotPrefix(session: string): string {
  return `drkit.m.${session}.`
}

/** Hold tag on the newest delta-set snapshot both sides share (the base of the next delta set). */
export function baseHold(session: string): string {
  return `drkit.mirror.${session}.base`
}

/** Hold tag on a restart point. */
export function restartPointHold(session: string): string {
  return `drkit.mirror.${session}.restart-point`
}

/** Hold tag on a resync safety snapshot. */
export function safetyHold(session: string): string {
  return `drkit.mirror.${session}.safety`
}

/**
 * The staging volume the destination agent keeps next to replica `volume` on the destination storage.
 *
 * @public
 */
export function stagingVolume(volume: string): string {
  return `${volume}.mirror-staging`
}

/** The delta-set number of a session snapshot name, or undefined when the name is not a delta-set snapshot of it. */
export function parseDeltaSetSnapshot(session: string, name: string): number | undefined {
  const prefix = `drkit.m.${session}.ds-`
  if (!name.startsWith(prefix)) return undefined
  const digits = name.slice(prefix.length)
  if (!/^\d{1,15}$/.test(digits)) return undefined
  return Number(digits)
}

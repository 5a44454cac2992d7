/**
 * How a disruption came to drkit's attention: an I/O error intercepted in a volume handle (`io-error`), a periodic
 * health probe (`probe`), a report from the embedder's own monitoring, e.g. a kernel storage exception or a file
 * system event (`reported`), or an administrator's planned restore (`planned`).
 *
 * @public
 */
export type DetectionChannel = 'io-error' | 'probe' | 'reported' | 'planned'

/**
 * A restore source as events and results describe it.
 *
 * @public
 */
export interface SourceView {
  readonly kind: 'snapshot' | 'replica' | 'standby'
  /** The snapshot name, the replica reference or the standby volume. */
  readonly ref: string
}

/**
 * The events of the freeze (non-disruptive restore) module. Every payload names the site, the protected volume
 * and the restore it belongs to.
 *
 * @public
 */
export type FreezeEvents = {
  /** A disruption of a protected volume was detected and a restore started (duplicates of it start none). */
  'freeze.disruptionDetected': {
    site: string
    volume: string
    restoreId: string
    channel: DetectionChannel
    planned: boolean
    code: string | null
    message: string | null
    actors: readonly string[]
  }
  /** I/O to the volume is held and the listed actors are frozen (`lateJoiner`: frozen after the restore began). */
  'freeze.frozen': {
    site: string
    volume: string
    restoreId: string
    actors: readonly string[]
    lateJoiner: boolean
    handles: number
    heldIo: number
  }
  /** The volume's data was restored from `source` (usable, not yet remounted). */
  'freeze.restored': {
    site: string
    volume: string
    restoreId: string
    source: SourceView
    fromVolume: string
    toVolume: string
    /** The size of the volume that holds the data now. */
    sizeBytes: number
    copiedBlocks: number
    durationMs: number
    /** When the restored data was captured (snapshot time), null when it is current (standby, live replica). */
    restorePointAt: number | null
    /** True when writes were flushed to the volume after the restore point: they are not in the restored data. */
    consistencyWarning: boolean
    /** Sources tried before this one, and why they failed. */
    failedSources: readonly { source: SourceView; code: string; message: string }[]
  }
  /** The volume is remounted with its identity, journaled writes replayed, the actors thawed and held I/O released. */
  'freeze.thawed': {
    site: string
    volume: string
    restoreId: string
    mountPath: string
    activeVolume: string
    identityPreserved: boolean
    actors: readonly string[]
    replayedWrites: number
    /** First held I/O (or, when none was held, the freeze) to thaw, in ms; null when the gate was not frozen. */
    freezeWindowMs: number | null
    /** Start of the restore to thaw, in ms. */
    frozenForMs: number
  }
  /** A freeze timeout fired before the restore finished: held I/O (`kind: 'io'`) or an actor was released. */
  'freeze.timedOut': {
    site: string
    volume: string
    restoreId: string | null
    kind: 'io' | 'actor'
    actor: string | null
    released: number
    volumeRestored: boolean
  }
  /** No non-disruptive restore is possible; nothing was frozen or dismounted and held I/O failed with E_PRECONDITION. */
  'freeze.restoreImpossible': { site: string; volume: string; restoreId: string; reason: string; released: number }
  /** The volume could not be remounted at its path with its identity (critical: applications may be affected). */
  'freeze.remountFailed': {
    site: string
    volume: string
    restoreId: string
    mountPath: string
    expected: { volume: string; identity: string }
    found: { volume: string; identity: string } | null
    message: string
  }
  /**
   * An automatic restore did not roll the volume back to `snapshot`: that would discard `changedBlocks` blocks
   * written (or trimmed) since, or what changed cannot be known (null). The protection's `allowRollback` allows it.
   */
  'freeze.rollbackRefused': { site: string; volume: string; restoreId: string; snapshot: string; changedBlocks: number | null; message: string }
  /** A restore source failed; the next one is tried. */
  'freeze.sourceFailed': { site: string; volume: string; restoreId: string; source: SourceView; code: string; message: string }
  /** The update lock was held by someone else; the restore waits `delayMs` before trying again. */
  'freeze.lockContended': { site: string; volume: string; restoreId: string; holder: string; attempt: number; delayMs: number }
  /**
   * A disruption was detected but the volume had `restores` automatic restores in the last `windowMs` already: no
   * restore starts, and the error reaches the application (emitted once per window).
   */
  'freeze.autoRestoreLimited': { site: string; volume: string; channel: DetectionChannel; restores: number; windowMs: number; code: string; message: string }
  /**
   * The restore failed in step `stage` and its compensations ran; held I/O was released with an error. With
   * `volumeDismounted` the volume stays dismounted (its data may be damaged) until a restore succeeds.
   */
  'freeze.restoreFailed': { site: string; volume: string; restoreId: string; stage: string; code: string; message: string; released: number; volumeDismounted: boolean }
  /**
   * Journaled writes could not be written back to the volume after a failed restore; the journal is kept in the state
   * store (critical: acknowledged writes are not on the volume yet).
   */
  'freeze.journalRetained': { site: string; volume: string; restoreId: string; writes: number; code: string; message: string }
}

import type { MirrorStateName } from './state.js'

/**
 * A side of a relationship as events name it.
 *
 * @public
 */
export interface MirrorSideRef {
  readonly site: string
  readonly volume: string
}

/**
 * The events of the mirror module: every change of a relationship and of its delta sets, with typed payloads.
 *
 * @public
 */
export type MirrorEvents = {
  'mirror.created': { id: string; source: MirrorSideRef; destination: MirrorSideRef }
  'mirror.started': { id: string }
  'mirror.stopped': { id: string }
  'mirror.deleted': { id: string }
  'mirror.deltaSetCut': {
    id: string
    site: string
    volume: string
    deltaSet: number
    trigger: 'timeout' | 'highWaterMark' | 'manual' | 'final' | 'initial'
    changedBytes: number
    epoch: number
  }
  'mirror.deltaSetSent': { id: string; deltaSet: number; chunks: number; chunksSent: number; bytes: number; resumedFromChunk: number; full: boolean }
  'mirror.deltaSetReceived': { id: string; site: string; deltaSet: number; chunks: number; bytes: number }
  'mirror.deltaSetApplied': { id: string; site: string; volume: string; deltaSet: number; blocks: number; holes: number; cutAt: number }
  'mirror.checksumMismatch': { id: string; site: string; deltaSet: number; chunk: number | null; reason: string }
  'mirror.sendFailed': { id: string; site: string; deltaSet: number | null; chunk: number | null; retries: number; code: string; message: string }
  'mirror.staleEpochRefused': { id: string; site: string; from: string; epoch: number; current: number }
  'mirror.peerRejected': { id: string; site: string; peer: string; code: string; message: string }
  'mirror.sourceReadOnlyFailed': { id: string; site: string; volume: string; code: string; message: string }
  'mirror.unfenceFailed': { id: string; site: string; volume: string; attempts: number; code: string; message: string }
  'mirror.flowControlled': { id: string; site: string; volume: string; backlogBytes: number | null; limitBytes: number | null; suspended: boolean }
  'mirror.operationStarted': { id: string; kind: 'failover' | 'resync' | 'failback' | 'swap' | 'delete'; state: MirrorStateName; resumed: boolean }
  'mirror.operationFailed': { id: string; kind: 'failover' | 'resync' | 'failback' | 'swap' | 'delete'; state: MirrorStateName; resumable: boolean; code: string; message: string }
  'mirror.failedOver': {
    id: string
    mode: 'sync' | 'default' | 'now'
    restartPoint: { site: string; volume: string; snapshot: string }
    lastApplied: number | null
    epoch: number
  }
  'mirror.resyncStarted': { id: string; mode: 'undo' | 'full'; lastApplied: number | null; epoch: number }
  'mirror.fullCopyRequired': { id: string; site: string; volume: string; reason: string }
  'mirror.resynced': { id: string; mode: 'undo' | 'full'; undoneBlocks: number; epoch: number; safetySnapshot: string | null }
  'mirror.failedBack': { id: string; kind: 'failback' | 'swap'; primary: MirrorSideRef; epoch: number; finalDeltaSet: number }
}

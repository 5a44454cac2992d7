/**
 * A side of an expandable-volume relationship as events name it.
 *
 * @public
 */
export interface EvSideRef {
  readonly site: string
  readonly volume: string
}

/**
 * The events of expandable-volume replication, with typed payloads.
 *
 * @public
 */
export type EvMirrorEvents = {
  'evMirror.created': { id: string; source: EvSideRef; destination: EvSideRef; pairs: number }
  'evMirror.idsMapped': { id: string; site: string; pairs: ReadonlyArray<{ destinationOriginalId: string; sourceId: string }> }
  'evMirror.memberRelationshipCreated': { id: string; key: string; source: string; destination: string; recreated: boolean }
  'evMirror.destinationResized': { id: string; site: string; volume: string; added: readonly number[]; removed: readonly number[] }
  'evMirror.transferStarted': { id: string; snapshot: string; base: string | null; sequence: number }
  'evMirror.memberTransferred': { id: string; constituent: string; snapshot: string; chunks: number; sent: number; bytes: number; resumedFrom: number }
  'evMirror.configurationReplicated': { id: string; site: string; volume: string; snapshot: string }
  'evMirror.redirectMoved': { id: string; site: string; volume: string; from: string | null; to: string }
  'evMirror.transferFailed': { id: string; snapshot: string; code: string; message: string }
  'evMirror.transferPreempted': { id: string; workflowId: string; by: 'failover' }
  'evMirror.sourceLeftWritable': { id: string; site: string; volume: string; reason: 'unreachable' | 'readOnlyFailed' }
  'evMirror.failedOver': { id: string; site: string; volume: string; presented: string; epoch: number; sourceReadOnly: boolean }
  'evMirror.commonSnapshotFound': { id: string; snapshot: string }
  'evMirror.commonSnapshotNotFound': { id: string }
  'evMirror.restoredToCommon': { id: string; site: string; volume: string; snapshot: string; safetySnapshot: string | null }
  'evMirror.reversed': { id: string; source: EvSideRef; destination: EvSideRef; epoch: number }
  'evMirror.resynced': { id: string; snapshot: string; mode: 'incremental' | 'baseline' }
  'evMirror.deleted': { id: string }
}

import * as t from 'io-ts'
import type { Draft } from 'immer'
import { RestoreSourceCodec } from './inputs.js'

const Nullable = <C extends t.Mixed>(codec: C) => t.union([codec, t.null])

/**
 * A restore source as recorded: its kind and the snapshot, replica reference or standby volume it names.
 *
 * @public
 */
export const SourceViewCodec = t.type({ kind: t.keyof({ snapshot: null, replica: null, standby: null }), ref: t.string }, 'SourceView')

/**
 * The protection of one volume as configured: where it is mounted and with which identity, where it can be
 * restored from, the freeze and actor timeouts (null: none), how often it is probed (null: never), how the
 * update lock is retried, and two safety limits of automatic restores: whether one may roll the volume back to a
 * snapshot that lacks writes already on the volume (`allowRollback`, default false), and how many may start in a
 * window (`autoRestoreLimit`, default {@link AUTO_RESTORE_LIMIT}). Both are optional in the journal, so that
 * protections recorded before they existed still decode.
 *
 * @public
 */
export const ProtectionConfigCodec = t.intersection(
  [
    t.type({
      site: t.string,
      volume: t.string,
      mountPath: t.string,
      identity: t.string,
      sources: t.array(RestoreSourceCodec),
      freezeTimeoutMs: Nullable(t.number),
      actorTimeoutMs: Nullable(t.number),
      probeEveryMs: Nullable(t.number),
      mountOptions: t.record(t.string, t.string),
      readOnly: t.boolean,
      lockRetry: t.type({ minDelayMs: t.number, maxDelayMs: t.number, maxAttempts: t.number }),
    }),
    t.partial({
      allowRollback: t.boolean,
      autoRestoreLimit: t.type({ restores: t.number, windowMs: t.number }),
    }),
  ],
  'ProtectionConfig',
)

/**
 * How many automatic restores (started by an intercepted I/O error or a health probe) a volume may have in a
 * window unless its protection says otherwise: five in ten minutes. A volume disrupted more often than that is
 * flapping, and restoring it again would hide the fault rather than cure it.
 *
 * @public
 */
export const AUTO_RESTORE_LIMIT = { restores: 5, windowMs: 10 * 60_000 } as const

/**
 * The automatic restore limit of a protection (its own, else {@link AUTO_RESTORE_LIMIT}).
 *
 * @public
 */
export function autoRestoreLimitOf(config: ProtectionConfig): { readonly restores: number; readonly windowMs: number } {
  return config.autoRestoreLimit ?? AUTO_RESTORE_LIMIT
}

/**
 * One protection's configuration.
 *
 * @public
 */
export type ProtectionConfig = t.TypeOf<typeof ProtectionConfigCodec>

/**
 * An actor a restore froze (so that it, and only it, is thawed): when, and whether it joined late.
 *
 * @public
 */
export const OwnedActorCodec = t.type({ id: t.string, frozenAt: t.number, late: t.boolean }, 'OwnedActor')

/**
 * The restore running for a volume: its id, its workflow, when and how it started, the actors it froze, and
 * whether it has started changing the volume's data (`altered`; absent: not yet).
 *
 * @public
 */
export const ActiveRestoreCodec = t.intersection(
  [
    t.type({ restoreId: t.string, workflowId: t.string, startedAt: t.number, channel: t.string, actors: t.array(OwnedActorCodec) }),
    t.partial({ altered: t.boolean }),
  ],
  'ActiveRestore',
)

/**
 * How the last restore of a volume ended.
 *
 * @public
 */
export const RestoreSummaryCodec = t.intersection(
  [
    t.type({
      restoreId: t.string,
      outcome: t.keyof({ restored: null, impossible: null, failed: null }),
      startedAt: t.number,
      finishedAt: t.number,
      source: Nullable(SourceViewCodec),
      freezeWindowMs: Nullable(t.number),
      code: Nullable(t.string),
      message: Nullable(t.string),
    }),
    t.partial({ volumeDismounted: t.boolean, retainedJournal: Nullable(t.string) }),
  ],
  'RestoreSummary',
)

/**
 * How the last restore of a volume ended: outcome, source, freeze window and, on failure, the error, whether the
 * volume was left dismounted (`volumeDismounted`: its data may be damaged) and then which restore's write journal
 * holds the acknowledged writes the next restore must replay (`retainedJournal`).
 *
 * @public
 */
export type RestoreSummary = t.TypeOf<typeof RestoreSummaryCodec>

/**
 * A protected volume as the state keeps it: its configuration, the volume currently backing it (a standby after a
 * swap), whether it is `protected`, being restored (`restoring`) or could not be restored (`failed`, with the
 * error), the running restore and the last one, and whether it is kept dismounted (`dismounted`) because a restore
 * failed after it had started changing the volume's data: then handle I/O fails with `E_UNAVAILABLE`, only a
 * restore that succeeds mounts it again (absent: false), and that restore also replays the acknowledged writes
 * kept in the journal of the failed one (`retainedJournal`, a restore id).
 *
 * @public
 */
export const ProtectionRecordCodec = t.intersection(
  [
    ProtectionConfigCodec,
    t.type({
      activeVolume: t.string,
      status: t.keyof({ protected: null, restoring: null, failed: null }),
      failure: Nullable(t.type({ code: t.string, message: t.string })),
      restore: Nullable(ActiveRestoreCodec),
      lastRestore: Nullable(RestoreSummaryCodec),
    }),
    t.partial({ dismounted: t.boolean, retainedJournal: Nullable(t.string) }),
  ],
  'ProtectionRecord',
)

/**
 * One protected volume.
 *
 * @public
 */
export type ProtectionRecord = t.TypeOf<typeof ProtectionRecordCodec>

/**
 * The freeze module's state: protected volumes by key (`site/volume`). Plain, serialisable data.
 *
 * @public
 */
export interface FreezeState {
  readonly protections: Readonly<Record<string, ProtectionRecord>>
}

/**
 * Codec for {@link FreezeState}, checked when a saved state is loaded.
 *
 * @public
 */
export const FreezeStateCodec = t.type({ protections: t.record(t.string, ProtectionRecordCodec) }, 'FreezeState')

const KeyData = t.type({ key: t.string })

/**
 * The journal events of the freeze module.
 *
 * @public
 */
export const FreezeJournalEventCodec = t.union([
  t.type({ type: t.literal('protection.set'), data: t.type({ key: t.string, config: ProtectionConfigCodec }) }),
  t.type({ type: t.literal('protection.removed'), data: KeyData }),
  t.type({ type: t.literal('protection.recovered'), data: KeyData }),
  t.type({
    type: t.literal('restore.started'),
    data: t.type({ key: t.string, restoreId: t.string, workflowId: t.string, startedAt: t.number, channel: t.string }),
  }),
  // One actor per event, as journals written before restore.actorsOwned have it; still folded.
  t.type({ type: t.literal('restore.actorOwned'), data: t.type({ key: t.string, restoreId: t.string, actor: OwnedActorCodec }) }),
  t.type({ type: t.literal('restore.actorsOwned'), data: t.type({ key: t.string, restoreId: t.string, actors: t.array(OwnedActorCodec) }) }),
  t.type({ type: t.literal('restore.altered'), data: t.type({ key: t.string, restoreId: t.string }) }),
  t.type({ type: t.literal('restore.repointed'), data: t.type({ key: t.string, activeVolume: t.string }) }),
  t.type({ type: t.literal('restore.finished'), data: t.type({ key: t.string, summary: RestoreSummaryCodec }) }),
])

/**
 * One decoded freeze journal event.
 *
 * @public
 */
export type FreezeJournalEvent = t.TypeOf<typeof FreezeJournalEventCodec>

/**
 * The state key of a protected volume.
 *
 * @public
 */
export function protectionKey(site: string, volume: string): string {
  return `${site}/${volume}`
}

/**
 * The state before anything is protected.
 *
 * @public
 */
export const emptyFreezeState: FreezeState = { protections: {} }

/**
 * Folds one journal event into the state (used with immer).
 *
 * @public
 */
export function reduceFreezeState(draft: Draft<FreezeState>, event: FreezeJournalEvent): void {
  const protections = draft.protections
  switch (event.type) {
    case 'protection.set': {
      const existing = protections[event.data.key]
      if (existing === undefined) {
        protections[event.data.key] = {
          ...event.data.config,
          activeVolume: event.data.config.volume,
          status: 'protected',
          failure: null,
          restore: null,
          lastRestore: null,
          dismounted: false,
        }
        return
      }
      Object.assign(existing, event.data.config)
      if (existing.status === 'failed' && existing.dismounted !== true) {
        existing.status = 'protected'
        existing.failure = null
      }
      return
    }
    case 'protection.removed':
      delete protections[event.data.key]
      return
    case 'protection.recovered': {
      const record = protections[event.data.key]
      if (record?.status === 'failed' && record.dismounted !== true) {
        record.status = 'protected'
        record.failure = null
      }
      return
    }
    case 'restore.started': {
      const record = protections[event.data.key]
      if (record === undefined) return
      const { restoreId, workflowId, startedAt, channel } = event.data
      record.status = 'restoring'
      record.restore = { restoreId, workflowId, startedAt, channel, actors: [] }
      return
    }
    case 'restore.actorOwned':
    case 'restore.actorsOwned': {
      const restore = protections[event.data.key]?.restore
      if (restore === undefined || restore === null || restore.restoreId !== event.data.restoreId) return
      const actors = event.type === 'restore.actorOwned' ? [event.data.actor] : event.data.actors
      for (const actor of actors) if (!restore.actors.some((owned) => owned.id === actor.id)) restore.actors.push(actor)
      return
    }
    case 'restore.altered': {
      const restore = protections[event.data.key]?.restore
      if (restore !== undefined && restore !== null && restore.restoreId === event.data.restoreId) restore.altered = true
      return
    }
    case 'restore.repointed': {
      const record = protections[event.data.key]
      if (record === undefined) return
      record.activeVolume = event.data.activeVolume
      record.dismounted = false
      return
    }
    case 'restore.finished': {
      const record = protections[event.data.key]
      if (record === undefined) return
      const { summary } = event.data
      record.lastRestore = summary
      record.restore = null
      const restored = summary.outcome === 'restored'
      record.status = restored ? 'protected' : 'failed'
      record.failure = restored ? null : { code: summary.code ?? 'E_INTERNAL', message: summary.message ?? summary.outcome }
      record.dismounted = restored ? false : (summary.volumeDismounted ?? record.dismounted ?? false)
      record.retainedJournal = restored ? null : (summary.retainedJournal ?? record.retainedJournal ?? null)
      return
    }
  }
}

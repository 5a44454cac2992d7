import * as E from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { DrEither } from '../../kernel/either.js'
import type { RestoreSource } from './inputs.js'
import { autoRestoreLimitOf, type FreezeJournalEvent, type FreezeState, type ProtectionConfig, type RestoreSummary } from './state.js'
import type { SourceView } from './events.js'

type Decided = DrEither<readonly FreezeJournalEvent[]>

const none: Decided = E.right([])

/**
 * Decides to protect a volume, or to update an existing protection (sources, timeouts, probes, lock retry). A
 * mount path already protected for another volume of the site is `E_CONFLICT`, and so is changing the mount path
 * or identity of a protection (unprotect first). Protecting again with the same configuration decides nothing,
 * except that it clears a `failed` status (not that of a volume kept dismounted: only a restore that succeeds does).
 *
 * @public
 */
export function decideProtect(state: FreezeState, key: string, config: ProtectionConfig): Decided {
  if (config.lockRetry.minDelayMs > config.lockRetry.maxDelayMs) {
    return E.left(
      new DrError('E_INVALID_INPUT', `invalid freeze.protect options: lockRetry.minDelayMs (${config.lockRetry.minDelayMs}) exceeds maxDelayMs (${config.lockRetry.maxDelayMs})`, {
        what: 'freeze.protect options',
        violations: [{ path: 'lockRetry.minDelayMs', expected: `at most maxDelayMs`, actual: String(config.lockRetry.minDelayMs) }],
      }),
    )
  }
  const clash = Object.entries(state.protections).find(([other, record]) => other !== key && record.site === config.site && record.mountPath === config.mountPath)
  if (clash !== undefined) {
    return E.left(new DrError('E_CONFLICT', `mount path "${config.mountPath}" of site "${config.site}" is protected for volume "${clash[1].volume}"`, { site: config.site, mountPath: config.mountPath, volume: clash[1].volume }))
  }
  const existing = state.protections[key]
  if (existing === undefined) return E.right([{ type: 'protection.set', data: { key, config } }])
  if (existing.mountPath !== config.mountPath || existing.identity !== config.identity) {
    return E.left(
      new DrError('E_CONFLICT', `volume "${config.volume}" of site "${config.site}" is protected at "${existing.mountPath}" with identity "${existing.identity}"; unprotect it first to change them`, {
        site: config.site,
        volume: config.volume,
        mountPath: existing.mountPath,
      }),
    )
  }
  const unchanged = JSON.stringify(pickConfig(existing)) === JSON.stringify(pickConfig(config))
  return unchanged && (existing.status !== 'failed' || existing.dismounted === true) ? none : E.right([{ type: 'protection.set', data: { key, config } }])
}

/** The configuration part of a record, in one key order (so that two configurations compare as JSON). */
function pickConfig(record: ProtectionConfig): ProtectionConfig {
  const { site, volume, mountPath, identity, sources, freezeTimeoutMs, actorTimeoutMs, probeEveryMs, mountOptions, readOnly, lockRetry } = record
  const limit = autoRestoreLimitOf(record)
  return {
    site,
    volume,
    mountPath,
    identity,
    sources,
    freezeTimeoutMs,
    actorTimeoutMs,
    probeEveryMs,
    mountOptions,
    readOnly,
    lockRetry: { minDelayMs: lockRetry.minDelayMs, maxDelayMs: lockRetry.maxDelayMs, maxAttempts: lockRetry.maxAttempts },
    allowRollback: record.allowRollback ?? false,
    autoRestoreLimit: { restores: limit.restores, windowMs: limit.windowMs },
  }
}

/**
 * Decides to stop protecting a volume: `E_NOT_FOUND` if it is not protected, `E_CONFLICT` while it is being restored.
 *
 * @public
 */
export function decideUnprotect(state: FreezeState, key: string): Decided {
  const record = state.protections[key]
  if (record === undefined) return E.left(notProtected(key))
  if (record.restore !== null) {
    return E.left(new DrError('E_CONFLICT', `volume ${key} is being restored (restore ${record.restore.restoreId})`, { key, restoreId: record.restore.restoreId }))
  }
  return E.right([{ type: 'protection.removed', data: { key } }])
}

/**
 * Decides that restore `restoreId` starts for a volume. Idempotent for the same restore (running or finished);
 * another restore running for the volume is `E_CONFLICT` (one restore per volume at a time).
 *
 * @public
 */
export function decideStartRestore(state: FreezeState, key: string, start: { restoreId: string; workflowId: string; startedAt: number; channel: string }): Decided {
  const record = state.protections[key]
  if (record === undefined) return E.left(notProtected(key))
  if (record.restore?.restoreId === start.restoreId || record.lastRestore?.restoreId === start.restoreId) return none
  if (record.restore !== null) {
    return E.left(new DrError('E_CONFLICT', `volume ${key} is already being restored (restore ${record.restore.restoreId})`, { key, restoreId: record.restore.restoreId }))
  }
  return E.right([{ type: 'restore.started', data: { key, ...start } }])
}

/**
 * Records that restore `restoreId` froze `actors` (before they are frozen, so that a crash cannot hide whose
 * freeze it was), in one event. Idempotent: actors it owns already are left out; nothing is decided for a restore
 * that is not the running one.
 *
 * @public
 */
export function decideOwnActors(state: FreezeState, key: string, restoreId: string, actors: ReadonlyArray<{ id: string; frozenAt: number; late: boolean }>): Decided {
  const restore = state.protections[key]?.restore
  if (restore === undefined || restore === null || restore.restoreId !== restoreId) return none
  const fresh = actors.filter((actor, i) => !restore.actors.some((owned) => owned.id === actor.id) && actors.findIndex((other) => other.id === actor.id) === i)
  return fresh.length === 0 ? none : E.right([{ type: 'restore.actorsOwned', data: { key, restoreId, actors: fresh } }])
}

/**
 * Records, before the first call that changes the volume's data, that restore `restoreId` is changing it: if the
 * restore then fails before its data step completes, the volume stays dismounted. Idempotent.
 *
 * @public
 */
export function decideAltered(state: FreezeState, key: string, restoreId: string): Decided {
  const restore = state.protections[key]?.restore
  if (restore === undefined || restore === null || restore.restoreId !== restoreId || restore.altered === true) return none
  return E.right([{ type: 'restore.altered', data: { key, restoreId } }])
}

/**
 * Records that the volume is mounted at its path again, backed by `activeVolume` (the standby after a swap); this
 * also ends a dismount that a failed restore had left. Idempotent: decides nothing when both are so already.
 *
 * @public
 */
export function decideRepoint(state: FreezeState, key: string, activeVolume: string): Decided {
  const record = state.protections[key]
  if (record === undefined || (record.activeVolume === activeVolume && record.dismounted !== true)) return none
  return E.right([{ type: 'restore.repointed', data: { key, activeVolume } }])
}

/**
 * Records how restore `summary.restoreId` ended. Idempotent: a restore that is not the running one decides nothing.
 *
 * @public
 */
export function decideFinish(state: FreezeState, key: string, summary: RestoreSummary): Decided {
  const record = state.protections[key]
  if (record?.restore?.restoreId !== summary.restoreId) return none
  return E.right([{ type: 'restore.finished', data: { key, summary } }])
}

/**
 * Records that a `failed` volume answers its health probe again, so disruptions restore it automatically again
 * (never a dismounted one: only a restore that succeeds brings it back).
 *
 * @public
 */
export function decideRecovered(state: FreezeState, key: string): Decided {
  const record = state.protections[key]
  return record?.status === 'failed' && record.dismounted !== true ? E.right([{ type: 'protection.recovered', data: { key } }]) : none
}

/**
 * What was found out about one restore source before freezing anything: whether it can be used now, and why not.
 *
 * @public
 */
export interface SourceFact {
  readonly source: RestoreSource
  readonly reachable: boolean
  readonly reason: string | null
}

/**
 * Decides whether a non-disruptive restore is possible, before anything is frozen: the host must answer (a broken
 * client cannot be repaired from the inside) and at least one source must be reachable. The plan lists the
 * reachable sources in the order they will be tried. Otherwise `E_PRECONDITION`, naming every reason.
 *
 * @public
 */
export function decideRestorePlan(facts: { readonly hostReachable: boolean; readonly hostReason: string | null; readonly sources: readonly SourceFact[] }): DrEither<readonly RestoreSource[]> {
  if (!facts.hostReachable) return E.left(new DrError('E_PRECONDITION', `the host cannot be managed: ${facts.hostReason ?? 'unreachable'}`, { reason: 'host' }))
  if (facts.sources.length === 0) return E.left(new DrError('E_PRECONDITION', 'no restore source is configured', { reason: 'no-source' }))
  const candidates = facts.sources.filter((fact) => fact.reachable).map((fact) => fact.source)
  if (candidates.length > 0) return E.right(candidates)
  const reasons = facts.sources.map((fact) => `${describeSource(fact.source)}: ${fact.reason ?? 'unreachable'}`).join('; ')
  return E.left(new DrError('E_PRECONDITION', `no restore source is reachable (${reasons})`, { reason: 'unreachable' }))
}

/**
 * A restore source as events show it.
 *
 * @public
 */
export function sourceView(source: RestoreSource): SourceView {
  switch (source.kind) {
    case 'snapshot':
      return { kind: 'snapshot', ref: source.snapshot }
    case 'replica':
      return { kind: 'replica', ref: source.ref }
    case 'standby':
      return { kind: 'standby', ref: source.volume }
  }
}

/**
 * A restore source in words, for messages.
 *
 * @public
 */
export function describeSource(source: RestoreSource): string {
  const view = sourceView(source)
  return `${view.kind} "${view.ref}"`
}

/**
 * The wait before retrying the update lock: `minDelayMs + r × (maxDelayMs − minDelayMs)` for a random `r` in
 * [0, 1), rounded; equal bounds give the fixed wait of the text's first variant.
 *
 * @public
 */
export function lockRetryDelay(policy: { readonly minDelayMs: number; readonly maxDelayMs: number }, random: number): number {
  const r = Math.min(Math.max(random, 0), 1)
  return Math.round(policy.minDelayMs + r * (policy.maxDelayMs - policy.minDelayMs))
}

/**
 * Chooses the common snapshot for an incremental copy from a replica: the newest snapshot of the replica, up to
 * the target, whose name the local volume also has (drkit's mirrors name a delta set's snapshot the same on both
 * sides). Null when there is none: every allocated block is copied.
 *
 * @public
 */
export function chooseCommonSnapshot(local: readonly string[], remote: readonly string[], target: string): string | null {
  const upTo = target === 'live' ? remote.length : remote.indexOf(target) + 1
  const localNames = new Set(local)
  for (let i = upTo - 1; i >= 0; i--) {
    const name = remote[i]
    if (name !== undefined && localNames.has(name)) return name
  }
  return null
}

/**
 * Groups ascending block indexes into runs of consecutive blocks, each at most `maxBlocks` long.
 *
 * @public
 */
export function blockRuns(blocks: readonly number[], maxBlocks: number): Array<{ start: number; count: number }> {
  const runs: Array<{ start: number; count: number }> = []
  for (const block of blocks) {
    const last = runs[runs.length - 1]
    if (last !== undefined && last.start + last.count === block && last.count < maxBlocks) last.count++
    else runs.push({ start: block, count: 1 })
  }
  return runs
}

/**
 * The error held I/O is released with when its restore could not finish: `E_PRECONDITION` when no non-disruptive
 * restore was possible, `E_CONFLICT` when something another party holds stood in the way (the mount path was taken,
 * the update lock was never obtained), else `E_UNAVAILABLE` (the volume is unavailable). Never `E_TIMEOUT`: that is
 * what a freeze timeout releases held I/O with. The cause is named in the message and details.
 *
 * @public
 */
export function heldIoError(key: string, cause: DrError): DrError {
  const kept = cause.code === 'E_PRECONDITION' || cause.code === 'E_CONFLICT'
  const code = kept ? cause.code : 'E_UNAVAILABLE'
  return new DrError(code, `volume ${key} could not be restored without disruption: ${cause.message}`, { key, cause: cause.code }, { cause })
}

function notProtected(key: string): DrError {
  return new DrError('E_NOT_FOUND', `volume ${key} is not protected`, { key })
}

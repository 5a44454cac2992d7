import * as t from 'io-ts'
import { DrError, callAdapter } from '../../kernel/errors.js'
import { JsonValue, type Json } from '../../kernel/codecs.js'
import type { RetryPolicy } from '../../kernel/retry.js'
import { isInterruption, type WorkflowContext } from '../../kernel/workflow.js'
import type { SnapshotEntry } from '../volume/index.js'
import type { EvContext } from './context.js'
import { decideConfirm, decideTransferred, type SourceMember } from './decide.js'
import { mapIds, resizeToMatch } from './resize.js'
import { sendMember } from './sender.js'
import { holdEntry, ignoreMissing, releaseStaleHolds, setSideWritable, snapshotNamed } from './side-ops.js'
import { pairEnds } from './state.js'

/**
 * The configuration record on the destination namespace constituent describing a replicated snapshot.
 *
 * @public
 */
export function snapshotConfigKey(snapshot: string): string {
  return `ev-mirror.snapshot.${snapshot}`
}

/**
 * Member transfers are retried (resuming at the next chunk) on transient failures.
 *
 * @public
 */
export const MEMBER_RETRY: RetryPolicy = { attempts: 5, initialDelayMs: 20, maxDelayMs: 1_000 }

/**
 * The journaled input of a transfer: the relationship, the source snapshot, the transfer's sequence number and
 * what the caller replicates with the snapshot (stored in its configuration record at the destination).
 *
 * @public
 */
export const TransferStepsInput = t.intersection([t.type({ id: t.string, snapshot: t.string, sequence: t.number }), t.partial({ attachment: JsonValue })])

type TransferInput = t.TypeOf<typeof TransferStepsInput>

/**
 * The transfer of one snapshot (XFER.1–6), as steps of the calling workflow: source information (and the
 * relationship's hold on the new snapshot at the source), resize of the destination, id mapping, confirmation of
 * the member relationships, the member transfers (in parallel, each resumable at its next chunk), the snapshot
 * configuration, the destination catalog, and only then the read redirect — which needs the destination alone.
 * Until the last step, readers at the destination see the previous snapshot complete on every constituent.
 *
 * @public
 */
export async function transferSteps(cx: EvContext, wf: WorkflowContext, input: TransferInput): Promise<{ snapshot: string; base: string | null; id: number }> {
  const { source, destination } = cx.sides(input.id)
  const info = await wf.step(
    'source',
    async () => {
      const entry = await snapshotNamed(cx, source, input.snapshot)
      if (entry === undefined) throw new DrError('E_NOT_FOUND', `"${source.volume}" on ${source.site} has no snapshot "${input.snapshot}"`, { id: input.id, snapshot: input.snapshot })
      if (!entry.valid) throw new DrError('E_PRECONDITION', `snapshot "${input.snapshot}" of "${source.volume}" is not valid; it is never transferred`, { id: input.id, snapshot: input.snapshot })
      const base = cx.rel(input.id).lastTransferred?.name ?? null
      await releaseStaleHolds(cx, input.id, source, [entry, base === null ? undefined : await snapshotNamed(cx, source, base)])
      await holdEntry(cx, input.id, source, entry, true)
      cx.events.emit('evMirror.transferStarted', 'info', { id: input.id, snapshot: input.snapshot, base, sequence: input.sequence })
      return { entry: entry as unknown as Json, base }
    },
    // Best effort: a source that cannot be reached keeps the hold until the next transfer's `source` step.
    { compensate: async (done) => (done.base === input.snapshot ? undefined : holdEntry(cx, input.id, source, done.entry as unknown as SnapshotEntry, false).catch(() => undefined)) },
  )
  const entry = info.entry as unknown as SnapshotEntry
  const members: SourceMember[] = entry.members.map((m) => ({ role: m.role, ordinal: m.ordinal, volume: m.volume }))
  await wf.step('resize', async () => resizeToMatch(cx, input.id, destination, members))
  await wf.step('map', async () => mapIds(cx, input.id, members))
  await wf.step('confirm', async () => {
    const events = await cx.commit((state) => decideConfirm(state, input.id))
    for (const event of events) {
      if (event.type === 'evMirror.memberRelationshipSet') {
        cx.events.emit('evMirror.memberRelationshipCreated', 'info', { id: input.id, key: event.data.key, source: event.data.member.source, destination: event.data.member.destination, recreated: true })
      }
    }
    return events.length
  })
  await wf.step('members', (ctx) => transferMembers(cx, input, entry, info.base, ctx.signal), { retry: MEMBER_RETRY, compensate: () => dropMemberSnapshots(cx, input.id, entry) })
  await wf.step('config', async () => {
    const rel = cx.rel(input.id)
    const config = {
      vserver: source.vserver,
      volume: source.volume,
      snapshotId: entry.id,
      volumeCount: entry.members.length,
      snapshotName: entry.name,
      allowedClients: rel.config.authorizedUsers ?? entry.allowedClients,
      valid: entry.valid,
      volumes: entry.members.map((m) => m.volume),
      createdAt: entry.createdAt,
      extra: rel.config.extra,
      attachment: input.attachment ?? null,
    }
    const ns = rel.pairs.find((p) => p.role === 'namespace')
    if (ns === undefined) throw new DrError('E_INTERNAL', `mirror "${input.id}" has no namespace pair`, { id: input.id })
    const storage = cx.sites(destination.site).storage
    await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(pairEnds(rel, ns).destination, snapshotConfigKey(entry.name), config, cx.token()))
    cx.events.emit('evMirror.configurationReplicated', 'info', { id: input.id, site: destination.site, volume: destination.volume, snapshot: entry.name })
    return config
  })
  const adopted = await wf.step(
    'catalog',
    async () => {
      const existing = await snapshotNamed(cx, destination, entry.name)
      if (existing !== undefined) return existing.id
      const rel = cx.rel(input.id)
      const byKey = new Map(rel.pairs.filter((p) => p.state === 'active').map((p) => [`${p.role}-${p.ordinal}`, pairEnds(rel, p).destination]))
      const made = await cx.volumes.adoptSnapshot({
        site: destination.site,
        volume: destination.volume,
        name: entry.name,
        createdAt: entry.createdAt,
        valid: true,
        ...(rel.config.authorizedUsers !== null ? { allowedClients: rel.config.authorizedUsers } : entry.allowedClients !== null ? { allowedClients: entry.allowedClients } : {}),
        members: entry.members.map((m) => ({ volume: byKey.get(`${m.role}-${m.ordinal}`) ?? m.volume, role: m.role, ordinal: m.ordinal, snapshot: m.snapshot, timestamp: m.timestamp })),
      })
      return made.id
    },
    { compensate: (id) => dropCatalogEntry(cx, input.id, entry.name, id, info.base) },
  )
  await wf.step('redirect', async () => {
    const made = await requireEntry(cx, input.id, entry.name)
    await holdEntry(cx, input.id, destination, made, true)
    await cx.volumes.setReadRedirect({ site: destination.site, volume: destination.volume, snapshot: adopted })
    await releaseStaleHolds(cx, input.id, destination, [made])
    await cx.commit((state) => decideTransferred(state, input.id, { name: entry.name, sequence: input.sequence, at: cx.clock.now() }))
    cx.events.emit('evMirror.redirectMoved', 'info', { id: input.id, site: destination.site, volume: destination.volume, from: info.base, to: entry.name })
    return adopted
  })
  return { snapshot: entry.name, base: info.base, id: adopted }
}

async function requireEntry(cx: EvContext, id: string, name: string): Promise<SnapshotEntry> {
  const { destination } = cx.sides(id)
  const entry = await snapshotNamed(cx, destination, name)
  if (entry === undefined) throw new DrError('E_INTERNAL', `snapshot "${name}" left the catalog of ${destination.site}/${destination.volume}`, { id, snapshot: name })
  return entry
}

/**
 * Compensation of the catalog step: puts the read redirect back on the base if it had moved already (a
 * transfer aborted at its last step), releases the destination's hold, and drops the catalog entry.
 */
async function dropCatalogEntry(cx: EvContext, id: string, name: string, adopted: number, base: string | null): Promise<void> {
  const { destination } = cx.sides(id)
  const ref = { site: destination.site, volume: destination.volume }
  if ((await cx.record(destination)).readRedirect === adopted) {
    const previous = base === null ? undefined : await snapshotNamed(cx, destination, base)
    await cx.volumes.setReadRedirect({ ...ref, snapshot: previous?.id ?? null })
  }
  const entry = await snapshotNamed(cx, destination, name)
  if (entry === undefined) return
  await holdEntry(cx, id, destination, entry, false)
  await cx.volumes.deleteSnapshot({ ...ref, name }).catch(ignoreMissing)
}

/**
 * Transfers every member of `entry` in parallel; a member whose destination snapshot exists is not sent again.
 * Every member settles before the step does, and a failed step leaves every destination constituent read-only.
 */
async function transferMembers(cx: EvContext, input: TransferInput, entry: SnapshotEntry, base: string | null, signal: AbortSignal): Promise<Json> {
  const { source, destination } = cx.sides(input.id)
  await cx.receiver(destination.site)
  const rel = cx.rel(input.id)
  const sourceBase = base === null ? undefined : await snapshotNamed(cx, source, base)
  const destinationBase = base === null ? undefined : await snapshotNamed(cx, destination, base)
  const site = cx.sites(source.site)
  const outcomes = await Promise.allSettled(
    entry.members.map(async (m) => {
      const pair = rel.pairs.find((p) => p.state === 'active' && p.role === m.role && p.ordinal === m.ordinal)
      if (pair === undefined) throw new DrError('E_INTERNAL', `no pair for ${m.volume}`, { id: input.id })
      const ends = pairEnds(rel, pair)
      const srcBase = sourceBase?.members.find((b) => b.role === m.role && b.ordinal === m.ordinal)?.snapshot ?? null
      const dstBase = destinationBase?.members.find((b) => b.role === m.role && b.ordinal === m.ordinal)?.snapshot ?? null
      const incremental = srcBase !== null && dstBase !== null
      const result = await sendMember({
        relationship: input.id,
        epoch: rel.epoch,
        source: { storage: site.storage, network: site.network, volume: m.volume, snapshot: m.snapshot, base: incremental ? srcBase : null },
        destination: { site: destination.site, volume: ends.destination, base: incremental ? dstBase : null },
        chunkBytes: cx.chunkBytes,
        signal,
      })
      cx.events.emit('evMirror.memberTransferred', 'info', { id: input.id, constituent: ends.destination, snapshot: m.snapshot, ...result })
      return { constituent: ends.destination, incremental, ...result }
    }),
  )
  const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as unknown)
  const crash = failures.find((reason) => isInterruption(reason))
  if (crash !== undefined) throw crash
  if (failures.length > 0) {
    await setSideWritable(cx, destination, false).catch(() => undefined)
    throw failures[0]
  }
  return outcomes.map((o) => (o.status === 'fulfilled' ? o.value : null))
}

/** Compensation of the member transfers: deletes the member snapshots they made at the destination. */
async function dropMemberSnapshots(cx: EvContext, id: string, entry: SnapshotEntry): Promise<void> {
  const rel = cx.rel(id)
  const { destination } = cx.sides(id)
  if ((await snapshotNamed(cx, destination, entry.name)) !== undefined) return
  const storage = cx.sites(destination.site).storage
  for (const m of entry.members) {
    const pair = rel.pairs.find((p) => p.state === 'active' && p.role === m.role && p.ordinal === m.ordinal)
    if (pair === undefined) continue
    const volume = pairEnds(rel, pair).destination
    await callAdapter(storage.kind, 'deleteSnapshot', () => storage.deleteSnapshot(volume, m.snapshot, cx.token())).catch(ignoreMissing)
  }
}

import * as t from 'io-ts'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import { getOrThrow } from '../../kernel/either.js'
import type { Json } from '../../kernel/codecs.js'
import type { RetryPolicy } from '../../kernel/retry.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { SnapshotEntry } from '../volume/index.js'
import type { EvContext } from './context.js'
import { decideConfirm, decidePairs, decideTransferred, planResize, type SourceMember } from './decide.js'
import { sendMember } from './sender.js'
import { pairEnds, type EvSide } from './state.js'

/**
 * The configuration record on the destination namespace constituent describing a replicated snapshot.
 *
 * @public
 */
export function snapshotConfigKey(snapshot: string): string {
  return `ev-mirror.snapshot.${snapshot}`
}

/**
 * The configuration record on a destination constituent naming the source constituent whose id it carries.
 *
 * @public
 */
export const SOURCE_ID_KEY = 'ev-mirror.sourceId'

/**
 * The hold tag that keeps the base snapshots of relationship `id`.
 *
 * @public
 */
export function holdTag(id: string): string {
  return `ev-mirror:${id}`
}

/**
 * Member transfers are retried (resuming at the next chunk) on transient failures.
 *
 * @public
 */
export const MEMBER_RETRY: RetryPolicy = { attempts: 5, initialDelayMs: 20, maxDelayMs: 1_000 }

/**
 * The journaled input of a transfer: the relationship, the source snapshot and the transfer's sequence number.
 *
 * @public
 */
export const TransferStepsInput = t.type({ id: t.string, snapshot: t.string, sequence: t.number })

type TransferInput = t.TypeOf<typeof TransferStepsInput>

/**
 * Finds a valid snapshot by name in a volume's catalog.
 *
 * @public
 */
export async function snapshotNamed(cx: EvContext, side: { site: string; volume: string }, name: string): Promise<SnapshotEntry | undefined> {
  return (await cx.volumes.listSnapshots({ site: side.site, volume: side.volume })).find((s) => s.name === name)
}

/**
 * Resizes `destination` to the members of the source: adds data constituents, then removes those the source
 * no longer has (and extras handed out below the highest new ordinal), with the destination writable while it
 * changes ({@link mapIds} makes it read-only again). Idempotent: planned from the current state every time.
 *
 * @public
 */
export async function resizeToMatch(cx: EvContext, id: string, destination: EvSide, members: readonly SourceMember[]): Promise<{ added: number[]; removed: number[] }> {
  const before = await cx.record(destination)
  const plan = getOrThrow(planResize(members, before))
  if (plan.add > 0 || plan.remove.length > 0) await setSideWritable(cx, destination, true)
  if (plan.add > 0) await cx.volumes.expand({ site: destination.site, volume: destination.volume, add: plan.add })
  const after = getOrThrow(planResize(members, await cx.record(destination)))
  if (after.remove.length > 0) await cx.volumes.shrink({ site: destination.site, volume: destination.volume, remove: after.remove })
  const wanted = new Set(members.filter((m) => m.role === 'data').map((m) => m.ordinal))
  const activeBefore = new Set(before.members.filter((m) => m.role === 'data' && m.state === 'active').map((m) => m.ordinal))
  const added = [...wanted].filter((o) => !activeBefore.has(o)).sort((x, y) => x - y)
  const removed = [...activeBefore].filter((o) => !wanted.has(o)).sort((x, y) => x - y)
  if (added.length > 0 || removed.length > 0) cx.events.emit('evMirror.destinationResized', 'info', { id, site: destination.site, volume: destination.volume, added, removed })
  return { added, removed }
}

/**
 * Makes every constituent of a side (retired ones left out) writable or read-only.
 *
 * @public
 */
export async function setSideWritable(cx: EvContext, side: { site: string; volume: string }, writable: boolean): Promise<void> {
  const storage = cx.sites(side.site).storage
  for (const m of (await cx.record(side)).members.filter((x) => x.state !== 'retired')) {
    await callAdapter(storage.kind, 'setWritable', () => storage.setWritable(m.volume, writable, cx.token()))
  }
}

/**
 * Gives every destination constituent of an active pair the source id (MIR.2/3): journals the pairs, the id
 * map and the member relationships of new pairs, records the source id on each destination constituent, and
 * makes the destination read-only (only the replicator writes it).
 *
 * @public
 */
export async function mapIds(cx: EvContext, id: string, members: readonly SourceMember[]): Promise<number> {
  const { destination } = cx.sides(id)
  const record = await cx.record(destination)
  const events = await cx.commit((state) => decidePairs(state, id, members, record, cx.clock.now()))
  const rel = cx.rel(id)
  const storage = cx.sites(destination.site).storage
  for (const pair of rel.pairs.filter((p) => p.state === 'active')) {
    const ends = pairEnds(rel, pair)
    await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(ends.destination, SOURCE_ID_KEY, ends.source, cx.token()))
  }
  await setSideWritable(cx, destination, false)
  if (events.some((e) => e.type === 'evMirror.pairsChanged')) cx.events.emit('evMirror.idsMapped', 'info', { id, site: destination.site, pairs: rel.idMap })
  for (const event of events) {
    if (event.type === 'evMirror.memberRelationshipSet') {
      cx.events.emit('evMirror.memberRelationshipCreated', 'info', { id, key: event.data.key, source: event.data.member.source, destination: event.data.member.destination, recreated: false })
    }
  }
  return rel.pairs.filter((p) => p.state === 'active').length
}

/**
 * The transfer of one snapshot (XFER.1–6), as steps of the calling workflow: source information, resize of the
 * destination, id mapping, confirmation of the member relationships, the member transfers (in parallel, each
 * resumable at its next chunk), the snapshot configuration, the destination catalog, and only then the read
 * redirect (with the holds on the new base). Until the last step, readers at the destination see the previous
 * snapshot complete on every constituent.
 *
 * @public
 */
export async function transferSteps(cx: EvContext, wf: WorkflowContext, input: TransferInput): Promise<{ snapshot: string; base: string | null; id: number }> {
  const { source, destination } = cx.sides(input.id)
  const info = await wf.step('source', async () => {
    const entry = await snapshotNamed(cx, source, input.snapshot)
    if (entry === undefined) throw new DrError('E_NOT_FOUND', `"${source.volume}" on ${source.site} has no snapshot "${input.snapshot}"`, { id: input.id, snapshot: input.snapshot })
    if (!entry.valid) throw new DrError('E_PRECONDITION', `snapshot "${input.snapshot}" of "${source.volume}" is not valid; it is never transferred`, { id: input.id, snapshot: input.snapshot })
    const base = cx.rel(input.id).lastTransferred?.name ?? null
    cx.events.emit('evMirror.transferStarted', 'info', { id: input.id, snapshot: input.snapshot, base, sequence: input.sequence })
    return { entry: entry as unknown as Json, base }
  })
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
    { compensate: () => cx.volumes.deleteSnapshot({ site: destination.site, volume: destination.volume, name: entry.name }).catch((e: unknown) => ignoreMissing(e)) },
  )
  await wf.step('redirect', async () => {
    const from = (await cx.record(destination)).readRedirect
    await holdBase(cx, input.id, source, entry.name, true)
    await holdBase(cx, input.id, destination, entry.name, true)
    await cx.volumes.setReadRedirect({ site: destination.site, volume: destination.volume, snapshot: adopted })
    const previous = info.base
    if (previous !== null && previous !== entry.name) {
      await holdBase(cx, input.id, source, previous, false)
      await holdBase(cx, input.id, destination, previous, false)
    }
    await cx.commit((state) => decideTransferred(state, input.id, { name: entry.name, sequence: input.sequence, at: cx.clock.now() }))
    const fromName = from === null ? null : ((await cx.volumes.listSnapshots({ site: destination.site, volume: destination.volume })).find((s) => s.id === from)?.name ?? null)
    cx.events.emit('evMirror.redirectMoved', 'info', { id: input.id, site: destination.site, volume: destination.volume, from: fromName, to: entry.name })
    return adopted
  })
  return { snapshot: entry.name, base: info.base, id: adopted }
}

function ignoreMissing(error: unknown): void {
  if (!isDrError(error, 'E_NOT_FOUND')) throw error
}

/** Adds (or removes) the relationship's hold on every member snapshot of overall snapshot `name` of a side. */
async function holdBase(cx: EvContext, id: string, side: { site: string; volume: string }, name: string, hold: boolean): Promise<void> {
  const entry = await snapshotNamed(cx, side, name)
  if (entry === undefined) return
  const storage = cx.sites(side.site).storage
  for (const m of entry.members) {
    if (hold) await callAdapter(storage.kind, 'holdSnapshot', () => storage.holdSnapshot(m.volume, m.snapshot, holdTag(id), cx.token()))
    else await callAdapter(storage.kind, 'releaseSnapshot', () => storage.releaseSnapshot(m.volume, m.snapshot, holdTag(id), cx.token())).catch((e: unknown) => ignoreMissing(e))
  }
}

/** Transfers every member of `entry` in parallel; a member whose destination snapshot exists is not sent again. */
async function transferMembers(cx: EvContext, input: TransferInput, entry: SnapshotEntry, base: string | null, signal: AbortSignal): Promise<Json> {
  const { source, destination } = cx.sides(input.id)
  await cx.receiver(destination.site)
  const rel = cx.rel(input.id)
  const sourceBase = base === null ? undefined : await snapshotNamed(cx, source, base)
  const destinationBase = base === null ? undefined : await snapshotNamed(cx, destination, base)
  const site = cx.sites(source.site)
  const results = await Promise.all(
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
  return results
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
    await callAdapter(storage.kind, 'deleteSnapshot', () => storage.deleteSnapshot(volume, m.snapshot, cx.token())).catch((e: unknown) => ignoreMissing(e))
  }
}

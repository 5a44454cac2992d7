import { randomBytes } from 'node:crypto'
import type { StoragePort } from '../../src/index.js'
import { until, volumeDigest } from './checks.js'
import { TransferProgress } from './progress.js'
import type { DrillReport } from './report.js'
import type { DrillWorld } from './sites.js'

/** Block size of the drill's replicated volume. */
export const BLOCK = 4096
/** The replicated volume: 64 MiB, a quarter of it written before replication starts. */
export const VOLUME = { name: 'db', sizeBytes: 64 * 2 ** 20 }
/** The mirror relationship's id. */
export const MIRROR = 'db'

async function writeRandomBlocks(storage: StoragePort, count: number, token: () => { scope: string; value: number }): Promise<void> {
  const blocks = VOLUME.sizeBytes / BLOCK
  for (let n = 0; n < count; n++) await storage.write(VOLUME.name, Math.floor(Math.random() * blocks) * BLOCK, randomBytes(BLOCK), token())
}

/** East's volume as west last received it: the delta set and the SHA-256 of east's volume when it was cut. */
export interface ReplicatedPoint {
  readonly deltaSet: number
  readonly eastDigest: string
}

/**
 * Replicates `db` from east to west over TCP (the initial copy, then a delta set of random writes) and checks west
 * against east at that delta set. `tamper` (the drill's failure-path test) writes one more block at east after the
 * cut, so that west and east differ and the check must fail.
 */
export async function replicationPhase(world: DrillWorld, report: DrillReport, tamper: boolean): Promise<ReplicatedPoint> {
  const { dr } = world
  const east = dr.site('east').storage
  const west = dr.site('west').storage
  await east.createVolume({ name: VOLUME.name, sizeBytes: VOLUME.sizeBytes, blockSize: BLOCK }, dr.token())
  for (let offset = 0; offset < VOLUME.sizeBytes / 4; offset += 2 ** 20) await east.write(VOLUME.name, offset, randomBytes(2 ** 20), dr.token())
  await new TransferProgress(world, 'initial copy → west').around(async () => {
    await dr.mirrors.create({ id: MIRROR, source: { site: 'east', volume: VOLUME.name }, destination: { site: 'west' }, cut: { every: '1h' } })
    await until('the initial copy', async () => (await dr.mirrors.status(MIRROR)).lastPlayedBack !== null)
  })

  await writeRandomBlocks(east, 256, () => dr.token())
  const { deltaSet, eastDigest } = await new TransferProgress(world, 'delta set → west').around(async () => {
    const { deltaSet } = await dr.mirrors.cutNow(MIRROR)
    const eastDigest = await volumeDigest(east, VOLUME.name)
    await until(`delta set ${deltaSet}`, async () => ((await dr.mirrors.status(MIRROR)).lastPlayedBack ?? 0) >= deltaSet)
    return { deltaSet, eastDigest }
  })
  if (tamper) await east.write(VOLUME.name, 0, randomBytes(BLOCK), dr.token())
  report.bytes('replication', `west equals east byte for byte at delta set ${deltaSet}`, (await volumeDigest(west, VOLUME.name)) === (await volumeDigest(east, VOLUME.name)))
  return { deltaSet, eastDigest }
}

/** The recovery point west holds now, as an age at `disasterAt`: the RPO if the disaster strikes then. */
export async function recoveryPointAge(world: DrillWorld, disasterAt: number): Promise<number | null> {
  const { recoveryPoint } = await world.dr.mirrors.status(MIRROR)
  return recoveryPoint === null ? null : (disasterAt - recoveryPoint.cutAt) / 1000
}

/**
 * After the failover (started by the namespace policy): west is the writable source, its restart point is the last
 * delta set it had applied, and west — its live volume and its restart-point snapshot — equals east as it was when
 * that delta set was cut.
 */
export async function verifyFailover(world: DrillWorld, report: DrillReport, replicated: ReplicatedPoint): Promise<void> {
  const { dr } = world
  const west = dr.site('west').storage
  const status = await dr.mirrors.status(MIRROR)
  const restartPoint = status.restartPoint
  report.state(
    'failover',
    `west is writable at epoch ${status.epoch}, its restart point ${restartPoint?.snapshot ?? 'missing'} at delta set ${restartPoint?.lastApplied ?? 'none'}`,
    status.source.site === 'west' && status.source.writable === true && restartPoint?.lastApplied === replicated.deltaSet,
  )
  const live = await volumeDigest(west, VOLUME.name)
  const atRestartPoint = restartPoint === null ? undefined : await volumeDigest(west, VOLUME.name, restartPoint.snapshot)
  report.bytes('failover', `west, and its restart point, equal east byte for byte as it was at delta set ${replicated.deltaSet}`, live === replicated.eastDigest && atRestartPoint === replicated.eastDigest)
}

/** While east is away, the application writes to `db` at west, now its primary. */
export async function writesAtWest(world: DrillWorld): Promise<void> {
  await writeRandomBlocks(world.dr.site('west').storage, 128, () => world.dr.token())
}

/** East is back: `db` is resynchronised by undo (east's unsent writes rolled back) and the original direction restored. */
export async function failbackPhase(world: DrillWorld, report: DrillReport): Promise<void> {
  const { dr } = world
  const east = dr.site('east').storage
  const west = dr.site('west').storage
  const fullCopies: string[] = []
  const resyncs: Array<{ mode: string; undoneBlocks: number }> = []
  const stopFull = dr.events.on('mirror.fullCopyRequired', (event) => fullCopies.push(event.payload.reason))
  const stopResync = dr.events.on('mirror.resynced', (event) => resyncs.push(event.payload))
  await new TransferProgress(world, `${MIRROR} resync + failback`).around(async () => {
    await dr.mirrors.resync(MIRROR, { acknowledgeDataLoss: true })
    await dr.mirrors.failback(MIRROR)
  })
  stopFull()
  stopResync()
  const undone = resyncs[0]?.undoneBlocks ?? 0
  report.state('failback', `the resync rolled back ${undone} blocks east wrote but never sent, by undo`, resyncs[0]?.mode === 'undo' && undone > 0)
  const status = await dr.mirrors.status(MIRROR)
  report.state('failback', 'east is the writable source again and west the read-only destination', status.source.site === 'east' && status.source.writable === true && status.destination.writable === false)
  report.bytes('failback', 'east equals west byte for byte, including what west wrote while east was away', (await volumeDigest(east, VOLUME.name)) === (await volumeDigest(west, VOLUME.name)))
  report.state('failback', 'the resync undid and copied differences only (no full copy)', fullCopies.length === 0)
}

/** East writes a burst it will never send: the disaster strikes between two delta sets. */
export async function unsentWrites(world: DrillWorld): Promise<void> {
  await writeRandomBlocks(world.dr.site('east').storage, 64, () => world.dr.token())
}

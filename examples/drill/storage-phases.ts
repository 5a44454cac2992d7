import { createHash, randomBytes } from 'node:crypto'
import type { StoragePort } from '../../src/index.js'
import type { DrillReport } from './report.js'
import type { DrillWorld } from './sites.js'
import { TransferProgress } from './progress.js'

/** Block size of the drill's replicated volume. */
export const BLOCK = 4096
/** The replicated volume: 64 MiB, a quarter of it written before replication starts. */
export const VOLUME = { name: 'db', sizeBytes: 64 * 2 ** 20 }
/** The mirror relationship's id. */
export const MIRROR = 'db'

/** SHA-256 of a whole volume (or of one of its snapshots), read in 1 MiB pieces. */
export async function volumeDigest(storage: StoragePort, volume: string, snapshot?: string): Promise<string> {
  const { sizeBytes } = await storage.volumeInfo(volume)
  const hash = createHash('sha256')
  for (let offset = 0; offset < sizeBytes; offset += 2 ** 20) {
    hash.update(await storage.read(volume, offset, Math.min(2 ** 20, sizeBytes - offset), snapshot === undefined ? {} : { snapshot }))
  }
  return hash.digest('hex')
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

async function writeRandomBlocks(storage: StoragePort, count: number, token: () => { scope: string; value: number }): Promise<void> {
  const blocks = VOLUME.sizeBytes / BLOCK
  for (let n = 0; n < count; n++) await storage.write(VOLUME.name, Math.floor(Math.random() * blocks) * BLOCK, randomBytes(BLOCK), token())
}

/** An expandable volume of four data constituents, objects across them, and a consistency-group snapshot. */
export async function consistencyGroupPhase(world: DrillWorld, report: DrillReport): Promise<void> {
  const { dr } = world
  const fenceWindows: number[] = []
  dr.events.on('volume.groupCommitted', (event) => fenceWindows.push(event.payload.fenceWindowMs))
  await dr.volumes.create({ site: 'east', volume: 'orders', dataConstituents: 4, size: '64MiB' })
  const paths = Array.from({ length: 32 }, (_, n) => `2026/11/day-${n}.csv`)
  const v1 = new Map(paths.map((path) => [path, randomBytes(2048 + Math.floor(Math.random() * 8192))]))
  for (const [path, data] of v1) await dr.volumes.putObject({ site: 'east', volume: 'orders', path, data })
  const snapshot = await dr.volumes.snapshot({ site: 'east', volume: 'orders', name: 'end-of-day', allowedClients: ['drill'] })
  for (const path of paths) await dr.volumes.putObject({ site: 'east', volume: 'orders', path, data: randomBytes(512) })
  let same = 0
  for (const [path, data] of v1) {
    const read = await dr.volumes.readSnapshotObject({ site: 'east', volume: 'orders', snapshot: snapshot.id, path, client: 'drill' })
    if (Buffer.from(read).equals(data)) same++
  }
  report.verify('consistency group', `the snapshot holds the exact bytes of all ${paths.length} objects across 4 constituents after they were overwritten`, same === paths.length)
  report.metrics.fenceWindowMs = fenceWindows.length === 0 ? null : Math.max(...fenceWindows)
}

/** Replicates `db` from east to west over TCP and checks west against east's own delta-set snapshot. */
export async function replicationPhase(world: DrillWorld, report: DrillReport, showProgress: boolean): Promise<void> {
  const { dr } = world
  const east = dr.site('east').storage
  const west = dr.site('west').storage
  await east.createVolume({ name: VOLUME.name, sizeBytes: VOLUME.sizeBytes, blockSize: BLOCK }, dr.token())
  for (let offset = 0; offset < VOLUME.sizeBytes / 4; offset += 2 ** 20) await east.write(VOLUME.name, offset, randomBytes(2 ** 20), dr.token())
  const progress = new TransferProgress('initial copy', VOLUME.sizeBytes / 4, showProgress)
  let applied = 0
  const stopCounting = dr.events.on('mirror.deltaSetApplied', (event) => {
    applied += event.payload.blocks * BLOCK
    progress.update(applied)
  })
  await dr.mirrors.create({ id: MIRROR, source: { site: 'east', volume: VOLUME.name }, destination: { site: 'west' }, cut: { every: '1h' } })
  await until('the initial copy', async () => (await dr.mirrors.status(MIRROR)).lastPlayedBack !== null)
  progress.stop()
  stopCounting()

  await writeRandomBlocks(east, 256, () => dr.token())
  const { deltaSet } = await dr.mirrors.cutNow(MIRROR)
  await until(`delta set ${deltaSet}`, async () => ((await dr.mirrors.status(MIRROR)).lastPlayedBack ?? 0) >= deltaSet)
  report.verify('replication', `west equals east byte for byte at delta set ${deltaSet}`, (await volumeDigest(west, VOLUME.name)) === (await volumeDigest(east, VOLUME.name)))
}

/** The recovery point west holds now, as an age at `disasterAt`: the RPO if the disaster strikes then. */
export async function recoveryPointAge(world: DrillWorld, disasterAt: number): Promise<number | null> {
  const { recoveryPoint } = await world.dr.mirrors.status(MIRROR)
  return recoveryPoint === null ? null : (disasterAt - recoveryPoint.cutAt) / 1000
}

/** After the failover (started by the namespace policy): west is the writable source and equals its restart point. */
export async function verifyFailover(world: DrillWorld, report: DrillReport): Promise<void> {
  const { dr } = world
  const west = dr.site('west').storage
  const status = await dr.mirrors.status(MIRROR)
  const restartPoint = status.restartPoint?.snapshot
  report.verify('failover', `west is writable at epoch ${status.epoch}, holding restart point ${restartPoint}`, status.source.site === 'west' && status.source.writable === true)
  report.verify('failover', 'west equals its restart point byte for byte', restartPoint !== undefined && (await volumeDigest(west, VOLUME.name)) === (await volumeDigest(west, VOLUME.name, restartPoint)))
}

/** Writes at west while east is away; east returns, is resynchronised by undo and the original direction restored. */
export async function failbackPhase(world: DrillWorld, report: DrillReport): Promise<void> {
  const { dr } = world
  const east = dr.site('east').storage
  const west = dr.site('west').storage
  await writeRandomBlocks(west, 128, () => dr.token())
  const fullCopies: string[] = []
  const resyncs: Array<{ mode: string; undoneBlocks: number }> = []
  const stopFull = dr.events.on('mirror.fullCopyRequired', (event) => fullCopies.push(event.payload.reason))
  const stopResync = dr.events.on('mirror.resynced', (event) => resyncs.push(event.payload))
  world.restoreEast()
  await dr.mirrors.resync(MIRROR, { acknowledgeDataLoss: true })
  await dr.mirrors.failback(MIRROR)
  stopFull()
  stopResync()
  const undone = resyncs[0]?.undoneBlocks ?? 0
  report.verify('failback', `the resync rolled back ${undone} blocks east wrote but never sent, by undo`, resyncs[0]?.mode === 'undo' && undone > 0)
  const status = await dr.mirrors.status(MIRROR)
  report.verify('failback', 'east is the writable source again and west the read-only destination', status.source.site === 'east' && status.source.writable === true && status.destination.writable === false)
  report.verify('failback', 'east equals west byte for byte, including what west wrote while east was away', (await volumeDigest(east, VOLUME.name)) === (await volumeDigest(west, VOLUME.name)))
  report.verify('failback', 'the resync undid and copied differences only (no full copy)', fullCopies.length === 0)
}

/** East writes a burst it will never send: the disaster strikes between two delta sets. */
export async function unsentWrites(world: DrillWorld): Promise<void> {
  await writeRandomBlocks(world.dr.site('east').storage, 64, () => world.dr.token())
}

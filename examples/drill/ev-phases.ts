import { randomBytes } from 'node:crypto'
import { TransferProgress } from './progress.js'
import type { DrillReport } from './report.js'
import type { DrillWorld } from './sites.js'

/** The expandable volume: four data constituents at east, replicated to a volume of the same name at west. */
const VOLUME = 'orders'
/** The expandable-volume mirror relationship's id. */
const RELATIONSHIP = 'orders'
/** The consistency-group snapshot that is replicated and that west serves after the failover. */
const SNAPSHOT = 'end-of-day'
/** The client the snapshot is restricted to; every read of it names this client. */
const CLIENT = 'drill'
/** An object written at west while east is away; it must reach east by the failback. */
const WRITTEN_AT_WEST = '2026/11/written-at-west.csv'

/** The objects of the expandable volume as its consistency-group snapshot holds them, by path. */
export type OrdersSnapshot = ReadonlyMap<string, Buffer>

/** How many objects of `expected` `read` returns byte for byte. */
async function sameObjects(expected: OrdersSnapshot, read: (path: string) => Promise<Uint8Array>): Promise<number> {
  let same = 0
  for (const [path, data] of expected) if (Buffer.from(await read(path)).equals(data)) same++
  return same
}

/**
 * An expandable volume of four data constituents, objects across them, a consistency-group snapshot, and every
 * object overwritten after it: the snapshot must still hold the first version of each.
 */
export async function consistencyGroupPhase(world: DrillWorld, report: DrillReport): Promise<OrdersSnapshot> {
  const { dr } = world
  const fenceWindows: number[] = []
  const stop = dr.events.on('volume.groupCommitted', (event) => fenceWindows.push(event.payload.fenceWindowMs))
  await dr.volumes.create({ site: 'east', volume: VOLUME, dataConstituents: 4, size: '64MiB' })
  const paths = Array.from({ length: 32 }, (_, n) => `2026/11/day-${n}.csv`)
  const v1 = new Map(paths.map((path) => [path, randomBytes(2048 + Math.floor(Math.random() * 8192))]))
  for (const [path, data] of v1) await dr.volumes.putObject({ site: 'east', volume: VOLUME, path, data })
  const snapshot = await dr.volumes.snapshot({ site: 'east', volume: VOLUME, name: SNAPSHOT, allowedClients: [CLIENT] })
  stop()
  for (const path of paths) await dr.volumes.putObject({ site: 'east', volume: VOLUME, path, data: randomBytes(512) })
  const same = await sameObjects(v1, async (path) => dr.volumes.readSnapshotObject({ site: 'east', volume: VOLUME, snapshot: snapshot.id, path, client: CLIENT }))
  report.bytes('consistency group', `the snapshot holds the exact bytes of all ${paths.length} objects across 4 constituents after they were overwritten`, same === paths.length)
  report.metrics.fenceWindowMs = fenceWindows.length === 0 ? null : Math.max(...fenceWindows)
  return v1
}

/**
 * The expandable volume's consistency-group snapshot is replicated to west (`dr.evMirrors`): every constituent,
 * then the catalog, and only then west's read redirect moves to it.
 */
export async function evReplicationPhase(world: DrillWorld, report: DrillReport, snapshot: OrdersSnapshot): Promise<void> {
  const { dr } = world
  await dr.evMirrors.create({ id: RELATIONSHIP, source: { site: 'east', volume: VOLUME }, destination: { site: 'west' } })
  const objectBytes = [...snapshot.values()].reduce((sum, data) => sum + data.length, 0)
  await new TransferProgress(world, `${SNAPSHOT} → west`, objectBytes).around(() => dr.evMirrors.transfer({ id: RELATIONSHIP, snapshot: SNAPSHOT }))
  const west = await dr.volumes.get({ site: 'west', volume: VOLUME })
  const entry = (await dr.volumes.listSnapshots({ site: 'west', volume: VOLUME })).find((s) => s.name === SNAPSHOT)
  report.state('ev replication', `west's read redirect serves snapshot ${SNAPSHOT}, complete on every constituent`, entry !== undefined && entry.valid && west.readRedirect === entry.id)
  const same = await sameObjects(snapshot, async (path) => dr.volumes.readSnapshotObject({ site: 'west', volume: VOLUME, snapshot: 0, path, client: CLIENT }))
  report.bytes('ev replication', `readers at west get the ${snapshot.size} objects of ${SNAPSHOT} byte for byte, not east's later overwrites`, same === snapshot.size)
}

/**
 * East is lost: the expandable volume fails over and west presents it read-write at the replicated snapshot —
 * the objects as they were at the snapshot, not east's later overwrites it never sent.
 */
export async function evFailoverPhase(world: DrillWorld, report: DrillReport, snapshot: OrdersSnapshot): Promise<void> {
  const { dr } = world
  const { presented, epoch } = await dr.evMirrors.failover({ id: RELATIONSHIP })
  report.state('failover', `west presents ${VOLUME} read-write at ${presented} (epoch ${epoch})`, presented === SNAPSHOT)
  const same = await sameObjects(snapshot, async (path) => dr.volumes.getObject({ site: 'west', volume: VOLUME, path }))
  report.bytes('failover', `${VOLUME} at west holds the ${snapshot.size} objects of ${SNAPSHOT} byte for byte`, same === snapshot.size)
}

/** While east is away, an application writes a new object to the expandable volume at west. */
export async function evWriteAtWest(world: DrillWorld): Promise<Buffer> {
  const data = randomBytes(6000)
  await world.dr.volumes.putObject({ site: 'west', volume: VOLUME, path: WRITTEN_AT_WEST, data })
  return data
}

/**
 * East is back: it is resynchronised from west (restored to the common snapshot, east's unsent overwrites
 * discarded as acknowledged, then updated), presented read-write again, and west resynchronised from it — the
 * original direction, with the object written at west on both sides.
 */
export async function evFailbackPhase(world: DrillWorld, report: DrillReport, snapshot: OrdersSnapshot, writtenAtWest: Buffer): Promise<void> {
  const { dr } = world
  await new TransferProgress(world, `${VOLUME} resync → east`, writtenAtWest.length).around(async () => {
    await dr.evMirrors.resync({ id: RELATIONSHIP, acknowledgeDataLoss: true })
    await dr.evMirrors.failover({ id: RELATIONSHIP })
    await dr.evMirrors.resync({ id: RELATIONSHIP })
  })
  const rel = await dr.evMirrors.get({ id: RELATIONSHIP })
  report.state('failback', `${VOLUME} replicates east → west again (epoch ${rel.epoch})`, rel.direction === 'forward' && rel.source.site === 'east' && rel.state === 'replicating')
  const expected = new Map([...snapshot, [WRITTEN_AT_WEST, writtenAtWest]])
  const atEast = await sameObjects(expected, async (path) => dr.volumes.getObject({ site: 'east', volume: VOLUME, path }))
  const atWest = await sameObjects(expected, async (path) => dr.volumes.readSnapshotObject({ site: 'west', volume: VOLUME, snapshot: 0, path, client: CLIENT }))
  report.bytes('failback', `${VOLUME} at east and at west holds the ${expected.size} objects byte for byte, including the one written at west`, atEast === expected.size && atWest === expected.size)
}

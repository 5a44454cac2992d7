/**
 * IP replication between two sites over TCP: a volume on east is mirrored to west, east is lost, west takes over
 * (failover), writes continue at west, east comes back and is resynchronised from west without a full copy, and
 * the original direction is restored (failback). Every step is verified by comparing block hashes.
 *
 * Plaintext TCP on loopback keeps the example self-contained; between machines give each site `tls: { key, cert,
 * ca }` instead (see docs/tcp.md).
 *
 * Run: npx tsx examples/mirror-failover-failback.ts
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDrSystem, fileStateStore, localStorage, tcpNetwork, type StoragePort } from '../src/index.js'

const BLOCK = 4096
const root = await mkdtemp(join(tmpdir(), 'drkit-mirror-'))

async function digest(storage: StoragePort, volume: string, snapshot?: string): Promise<string> {
  const { sizeBytes } = await storage.volumeInfo(volume)
  const hash = createHash('sha256')
  for (let offset = 0; offset < sizeBytes; offset += 256 * BLOCK) hash.update(await storage.read(volume, offset, 256 * BLOCK, snapshot === undefined ? {} : { snapshot }))
  return hash.digest('hex').slice(0, 16)
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let waited = 0; waited < 30_000; waited += 20) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function check(what: string, ok: boolean): void {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
  if (!ok) throw new Error(`verification failed: ${what}`)
}

try {
  const eastNet = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true })
  const westNet = tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true })
  eastNet.setPeer('west', await westNet.address())
  westNet.setPeer('east', await eastNet.address())

  await using dr = await createDrSystem({
    state: fileStateStore({ dir: join(root, 'state') }),
    sites: {
      east: { storage: localStorage({ dir: join(root, 'east') }), network: eastNet },
      west: { storage: localStorage({ dir: join(root, 'west') }), network: westNet },
    },
  })
  const east = dr.site('east').storage
  const west = dr.site('west').storage
  dr.events.on('mirror.failedOver', (e) => console.log(`mirror.failedOver  mode ${e.payload.mode}, epoch ${e.payload.epoch}`))
  dr.events.on('mirror.resynced', (e) => console.log(`mirror.resynced    ${e.payload.mode}, ${e.payload.undoneBlocks} blocks undone`))
  const sent: Array<{ bytes: number; full: boolean }> = []
  dr.events.on('mirror.deltaSetSent', (e) => sent.push({ bytes: e.payload.bytes, full: e.payload.full }))
  dr.events.on('mirror.failedBack', (e) => console.log(`mirror.failedBack  primary ${e.payload.primary.site}, epoch ${e.payload.epoch}`))

  await east.createVolume({ name: 'db', sizeBytes: 16 * 1024 * 1024, blockSize: BLOCK }, dr.token())
  for (let n = 0; n < 64; n++) await east.write('db', n * 16 * BLOCK, randomBytes(BLOCK), dr.token())

  await dr.mirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '1h' } })
  await until('the initial copy', async () => (await dr.mirrors.status('db')).lastPlayedBack !== null)
  for (let n = 0; n < 16; n++) await east.write('db', n * 7 * BLOCK, randomBytes(BLOCK), dr.token())
  const { deltaSet } = await dr.mirrors.cutNow('db')
  await until(`delta set ${deltaSet} to play back at west`, async () => ((await dr.mirrors.status('db')).lastPlayedBack ?? 0) >= deltaSet)
  check('west holds what east had at the last delta set', (await digest(west, 'db')) === (await digest(east, 'db')))

  const initial = sent.length
  // East is lost: promote west with what it has (the `default` mode applies everything it received completely).
  const failover = await dr.mirrors.failover('db', { mode: 'default' })
  check(`west equals its restart point ${failover.restartPoint}`, (await digest(west, 'db')) === (await digest(west, 'db', failover.restartPoint)))
  for (let n = 0; n < 8; n++) await west.write('db', n * 11 * BLOCK, randomBytes(BLOCK), dr.token())

  // East is back: undo what it may have written after the restart point, copy west's changes, replicate west → east.
  await dr.mirrors.resync('db', { acknowledgeDataLoss: true })
  await dr.mirrors.failback('db')
  const status = await dr.mirrors.status('db')
  check('east is the writable source again, west the read-only destination', status.source.site === 'east' && status.source.writable === true && status.destination.writable === false)
  check('east and west are identical after failback', (await digest(east, 'db')) === (await digest(west, 'db')))
  const later = sent.slice(initial)
  check(`resync and failback sent ${later.reduce((sum, s) => sum + s.bytes, 0)} bytes in ${later.length} delta sets, none of them a full copy`, later.every((s) => !s.full))
  console.log('mirror failover and failback: every verification passed')
} finally {
  await rm(root, { recursive: true, force: true })
}

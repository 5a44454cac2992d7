import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { tcpNetwork, type TcpNetwork } from '../../../src/adapters/tcp/tcp-network.js'
import type { PeerRejection } from '../../../src/ports/network.js'
import type { TcpTlsMaterial } from '../../../src/adapters/tcp/tls.js'
import { MIRROR_SERVICE } from '../../../src/modules/mirror/naming.js'
import { PROTOCOL_VERSION, decodeFrame, encodeChunk, encodeControl, encodeRuns } from '../../../src/modules/mirror/protocol.js'
import { payloadCrc } from '../../../src/modules/mirror/delta-chunks.js'
import { createTestCertificateAuthority, type TestCertificateAuthority } from '../../fixtures/certs.js'
import { blockHashes } from '../../fixtures/mirror-world.js'
import { eventually, tcpMirrorWorld } from '../../fixtures/mirror-tcp.js'

const BLOCK = 64 * 1024
const CHUNK = 4 * BLOCK

let trusted: TestCertificateAuthority
let rogue: TestCertificateAuthority
const material = new Map<string, TcpTlsMaterial>()
const closing: Array<{ close(): Promise<void> }> = []

beforeAll(async () => {
  // The certificates are made with openssl; without it these tests must fail, not skip.
  execFileSync('openssl', ['version'])
  trusted = await createTestCertificateAuthority('drkit-mirror-ca')
  rogue = await createTestCertificateAuthority('drkit-mirror-rogue-ca')
  for (const site of ['east', 'west', 'north']) material.set(site, { ...(await trusted.issue(site)), ca: trusted.cert })
  // Says "east", but signed by a CA nobody trusts.
  material.set('fake-east', { ...(await rogue.issue('east')), ca: trusted.cert })
})

afterEach(async () => {
  for (const item of closing.splice(0).reverse()) await item.close().catch(() => undefined)
})

afterAll(async () => {
  await Promise.all([trusted?.dispose(), rogue?.dispose()])
})

function tls(site: string): TcpTlsMaterial {
  const found = material.get(site)
  if (found === undefined) throw new Error(`no test certificate for ${site}`)
  return found
}

/** A replicating relationship `m` (east → west) over mutual TLS, initial copy played back. */
async function replicatingOverTls() {
  const w = await tcpMirrorWorld({ blockSize: BLOCK, blocks: 64, tls })
  closing.push(w)
  await w.mirrors.create({ id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '1h' }, transfer: { chunkSize: CHUNK } })
  await eventually(async () => (await w.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
  return w
}

/** Another tcp port (an intruder) with the given identity and certificate, pointed at west. */
async function intruder(site: string, certificate: string, west: TcpNetwork): Promise<TcpNetwork> {
  const port = tcpNetwork({ site, listen: { port: 0 }, peers: {}, tls: tls(certificate) })
  closing.push(port)
  port.setPeer('west', await west.address())
  return port
}

describe('mirror peers over real TCP: authentication, strangers, interrupted connections', () => {
  it('a peer that fails TLS authentication is refused and reported as mirror.peerRejected; nothing it sent is applied', async () => {
    const w = await replicatingOverTls()
    const rejections: PeerRejection[] = []
    w.networks['west']!.onPeerRejected((r) => rejections.push(r))
    const before = await blockHashes(w.west, 'db')
    const fake = await intruder('east', 'fake-east', w.networks['west']!)
    await expect(fake.connect('west', MIRROR_SERVICE)).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    await eventually(() => w.names('mirror.peerRejected').length > 0, 'peerRejected')
    expect(rejections.length).toBeGreaterThan(0)
    expect(w.names('mirror.peerRejected')[0]!.payload).toMatchObject({ id: 'm', site: 'west', code: 'E_PRECONDITION' })
    expect(await blockHashes(w.west, 'db')).toEqual(before)
    expect(await w.mirrors.status('m')).toMatchObject({ lastPlayedBack: 1, lastReceived: 1, state: 'replicating' })
  })

  it('an authenticated site that is not the source of the session is refused (E_PRECONDITION) and reported; its delta set is never staged or applied', async () => {
    const w = await replicatingOverTls()
    const before = await blockHashes(w.west, 'db')
    const north = await intruder('north', 'north', w.networks['west']!)
    const channel = await north.connect('west', MIRROR_SERVICE)
    const frames = channel.frames()[Symbol.asyncIterator]()
    // It claims to be east in its hello, at the session's epoch, and goes on with a whole delta set 2.
    await channel.send(encodeControl({ t: 'hello', v: PROTOCOL_VERSION, session: 'm', epoch: 1, site: 'east', volume: 'db', blockSize: BLOCK }))
    const data = new Uint8Array(BLOCK).fill(0xee)
    const payload = encodeRuns([{ start: 0, count: 1, data }])
    const crc = payloadCrc(payload)
    const frame = encodeChunk({ epoch: 1, n: 2, baseN: 1, index: 0, runs: 1, crc }, payload)
    const header = encodeControl({ t: 'header', epoch: 1, n: 2, baseN: 1, chunks: 1, blocks: 1, holes: 0, dataBytes: BLOCK, sizeBytes: 64 * BLOCK, blockSize: BLOCK, crc, cutAt: 0 })
    await channel.send(frame).catch(() => undefined)
    await channel.send(header).catch(() => undefined)
    const answer = await frames.next()
    expect(answer.done).toBe(false)
    const refused = decodeFrame(answer.value as Uint8Array)
    expect(refused).toMatchObject({ kind: 'control', frame: { t: 'refused', code: 'E_PRECONDITION' } })
    expect(w.names('mirror.peerRejected').map((e) => e.payload)).toContainEqual(expect.objectContaining({ id: 'm', site: 'west', peer: 'north', code: 'E_PRECONDITION' }))
    // The refusal came on the hello, before west read anything else, and west closed the channel: nothing else of
    // it was ever taken in. Neither the replica's progress record nor staging holds delta set 2.
    await frames.next().then(
      (end) => expect(end.done).toBe(true),
      (error: unknown) => expect(error).toMatchObject({ code: 'E_UNAVAILABLE' }),
    )
    expect(((await w.west.getConfig('db', 'drkit.mirror.progress')) as { n?: number } | undefined)?.n).not.toBe(2)
    expect(((await w.west.getConfig('db.mirror-staging', 'drkit.mirror.staging')) as { sets: unknown[] } | undefined)?.sets ?? []).toEqual([])
    expect(await blockHashes(w.west, 'db')).toEqual(before)
    expect(await w.mirrors.status('m')).toMatchObject({ lastPlayedBack: 1, lastReceived: 1 })
    expect(w.names('mirror.deltaSetReceived').filter((e) => e.payload['deltaSet'] === 2)).toEqual([])
    // The real source still replicates.
    await w.write(w.east, [7])
    const { deltaSet } = await w.mirrors.cutNow('m')
    await eventually(async () => (await w.mirrors.status('m')).lastPlayedBack === deltaSet, 'real delta set')
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.east, 'db'))
  })

  it('a TCP connection killed in the middle of a chunk resumes at the first chunk the destination lacks; acknowledged chunks are never resent', async () => {
    const w = await tcpMirrorWorld({ blockSize: BLOCK, blocks: 256, proxy: true, windowFrames: 2 })
    closing.push(w)
    const proxy = w.proxy!
    await w.mirrors.create({ id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '1h' }, transfer: { chunkSize: CHUNK } })
    await eventually(async () => (await w.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
    const changed = Array.from({ length: 128 }, (_, i) => i * 2 + 1)
    await w.write(w.east, changed)
    const dataBytes = changed.length * BLOCK
    const upBefore = proxy.total.up
    // Cut the connection (the only one so far, so its byte count is the proxy's) 60% of the way through the delta
    // set, in the middle of a chunk.
    expect(proxy.connections).toBe(1)
    proxy.cutUpAfter(upBefore + Math.floor(dataBytes * 0.6) + CHUNK / 2)
    const { deltaSet } = await w.mirrors.cutNow('m')
    await eventually(async () => (await w.mirrors.status('m')).lastPlayedBack === deltaSet, 'delta set after the cut')
    const sent = w.names('mirror.deltaSetSent').filter((e) => e.payload['deltaSet'] === deltaSet).map((e) => e.payload)
    expect(proxy.connections).toBeGreaterThan(1)
    expect(sent.at(-1)!['resumedFromChunk']).toBeGreaterThan(0)
    // Everything crossed once, plus at most what was in flight (the tcp window: 2 frames) when the connection died.
    const up = proxy.total.up - upBefore
    expect(up).toBeLessThan(dataBytes + 3 * CHUNK)
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.east, 'db'))
    expect(w.names('mirror.deltaSetApplied').filter((e) => e.payload['deltaSet'] === deltaSet)).toHaveLength(1)
  })
})

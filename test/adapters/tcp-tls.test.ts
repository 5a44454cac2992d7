import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { Buffer } from 'node:buffer'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { crc32 } from '../../src/kernel/crc32.js'
import { FRAME_HEADER_BYTES, FrameType } from '../../src/adapters/tcp/framing.js'
import { isDrError } from '../../src/kernel/errors.js'
import type { Channel, PeerRejection } from '../../src/ports/network.js'
import { tcpNetwork, type TcpNetwork } from '../../src/adapters/tcp/tcp-network.js'
import type { TcpTlsMaterial } from '../../src/adapters/tcp/tls.js'
import { createTestCertificateAuthority, type TestCertificateAuthority } from '../fixtures/certs.js'

const failsWith = (code: string) => (error: unknown) => isDrError(error) && error.code === code

let trusted: TestCertificateAuthority
let rogue: TestCertificateAuthority
const material = new Map<string, TcpTlsMaterial>()
const open: TcpNetwork[] = []

beforeAll(async () => {
  // The certificates are made with openssl; without it these tests must fail, not skip.
  execFileSync('openssl', ['version'])
  trusted = await createTestCertificateAuthority('drkit-trusted-ca')
  rogue = await createTestCertificateAuthority('drkit-rogue-ca')
  for (const site of ['east', 'west', 'mallory']) material.set(site, { ...(await trusted.issue(site)), ca: trusted.cert })
  // A certificate that says "west" but was signed by a CA nobody trusts; its holder trusts the real CA.
  material.set('rogue-west', { ...(await rogue.issue('west')), ca: trusted.cert })
  // A site that trusts only the rogue CA, so it cannot recognise the real east.
  material.set('lost-west', { ...(await trusted.issue('west')), ca: rogue.cert })
})

afterAll(async () => {
  await Promise.all(open.splice(0).map((port) => port.close()))
  await Promise.all([trusted?.dispose(), rogue?.dispose()])
})

function tlsSite(site: string, tls: string = site): TcpNetwork {
  const tlsMaterial = material.get(tls)
  if (tlsMaterial === undefined) throw new Error(`no material ${tls}`)
  const port = tcpNetwork({ site, listen: { port: 0 }, peers: {}, tls: tlsMaterial })
  open.push(port)
  return port
}

/** East listening on `svc` (recording channels and rejections) and a client site pointed at it. */
async function eastAnd(client: TcpNetwork): Promise<{ east: TcpNetwork; channels: Channel[]; rejections: PeerRejection[] }> {
  const east = tlsSite('east')
  const channels: Channel[] = []
  const rejections: PeerRejection[] = []
  east.onPeerRejected((rejection) => rejections.push(rejection))
  await east.listen('svc', (channel) => channels.push(channel))
  client.setPeer('east', await east.address())
  return { east, channels, rejections }
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1))
}

describe('tcp network: mutual TLS', () => {
  it('sites with certificates from the shared CA open channels and probe each other', async () => {
    const west = tlsSite('west')
    const { east, channels, rejections } = await eastAnd(west)
    east.setPeer('west', await west.address())
    const near = await west.connect('east', 'svc')
    await until(() => channels.length === 1)
    const far = channels[0] as Channel
    expect(far.remoteSite).toBe('west')
    await near.send(new TextEncoder().encode('over tls'))
    const got = await far.frames()[Symbol.asyncIterator]().next()
    expect(new TextDecoder().decode(got.value as Uint8Array)).toBe('over tls')
    await far.send(new Uint8Array([1, 2, 3]))
    expect(Array.from((await near.frames()[Symbol.asyncIterator]().next()).value as Uint8Array)).toEqual([1, 2, 3])
    expect((await west.probe('east', 5000)).reachable).toBe(true)
    expect((await east.probe('west', 5000)).reachable).toBe(true)
    expect(rejections).toEqual([])
    await near.close()
  })

  it('a client whose certificate comes from another CA is refused and reported; the listener never sees a channel', async () => {
    const impostor = tlsSite('west', 'rogue-west')
    const { channels, rejections } = await eastAnd(impostor)
    await expect(impostor.connect('east', 'svc')).rejects.toSatisfy(failsWith('E_UNAVAILABLE'))
    await until(() => rejections.length > 0)
    expect(rejections[0]).toMatchObject({ claimedSite: 'west', direction: 'inbound' })
    expect(rejections[0]?.reason).toMatch(/not trusted/)
    expect(rejections[0]?.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(channels).toEqual([])
    expect((await impostor.probe('east', 2000)).reachable, 'a refused peer does not count as reachable').toBe(false)
    expect(channels).toEqual([])
  })

  it("a peer claiming site 'west' with a certificate for 'mallory' is refused and reported", async () => {
    const mallory = tlsSite('west', 'mallory')
    const { channels, rejections } = await eastAnd(mallory)
    await expect(mallory.connect('east', 'svc')).rejects.toSatisfy(failsWith('E_UNAVAILABLE'))
    await until(() => rejections.length > 0)
    expect(rejections[0]).toMatchObject({ claimedSite: 'west', direction: 'inbound' })
    expect(rejections[0]?.reason).toMatch(/mallory/)
    expect(channels).toEqual([])
  })

  it('a client refuses a server whose certificate it cannot trust, and reports it', async () => {
    const lost = tlsSite('west', 'lost-west')
    const ownRejections: PeerRejection[] = []
    lost.onPeerRejected((rejection) => ownRejections.push(rejection))
    const { channels } = await eastAnd(lost)
    await expect(lost.connect('east', 'svc')).rejects.toSatisfy(failsWith('E_UNAVAILABLE'))
    expect(ownRejections[0]).toMatchObject({ claimedSite: 'east', direction: 'outbound' })
    expect(channels).toEqual([])
  })

  it('a client refuses a server that is not the site it asked for', async () => {
    const west = tlsSite('west')
    const impostorEast = tlsSite('mallory')
    const ownRejections: PeerRejection[] = []
    west.onPeerRejected((rejection) => ownRejections.push(rejection))
    await impostorEast.listen('svc', () => undefined)
    west.setPeer('east', await impostorEast.address())
    await expect(west.connect('east', 'svc')).rejects.toSatisfy(failsWith('E_UNAVAILABLE'))
    expect(ownRejections[0]?.reason).toMatch(/mallory/)
  })

  it('a plaintext client is refused by a TLS site and reported', async () => {
    const plain = tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true })
    open.push(plain)
    const { channels, rejections } = await eastAnd(plain)
    await expect(plain.connect('east', 'svc')).rejects.toSatisfy(failsWith('E_UNAVAILABLE'))
    await until(() => rejections.length > 0)
    expect(rejections[0]?.reason).toMatch(/TLS/)
    expect(channels).toEqual([])
  })
})

/** Opens a raw TLS connection to `port` with `tls` material (no drkit handshake); resolves once it is negotiated. */
async function rawTls(port: TcpNetwork, tlsMaterial: TcpTlsMaterial): Promise<TLSSocket> {
  const { host, port: number } = await port.address()
  const socket = tlsConnect({ host, port: number, key: tlsMaterial.key, cert: tlsMaterial.cert, ca: tlsMaterial.ca, rejectUnauthorized: false })
  socket.on('error', () => undefined)
  await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()))
  return socket
}

describe('tcp network: nothing large before authentication', () => {
  it.each([
    ['an untrusted client (certificate of another CA)', 'rogue-west'],
    ['a trusted client that has not sent its hello yet', 'west'],
  ])('%s announcing a 64 MiB frame is cut at the frame header (at most 4 KiB before the hello) and reported', async (_, who) => {
    const { east, channels, rejections } = await eastAnd(tlsSite('west'))
    const socket = await rawTls(east, material.get(who) as TcpTlsMaterial)
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    const header = Buffer.alloc(FRAME_HEADER_BYTES)
    header.writeUInt8(FrameType.hello, 0)
    header.writeUInt32BE(64 * 1024 * 1024, 1)
    header.writeUInt32BE(0, 5)
    header.writeUInt32BE(crc32(header.subarray(0, 9)), 9)
    socket.write(header)
    await closed
    await until(() => rejections.length > 0)
    expect(rejections[0]?.reason).toMatch(/announces 67108864 bytes, over the limit of 4096/)
    expect(channels).toEqual([])
  })

  it('an untrusted client that never names itself is cut after the close grace and reported as not trusted', async () => {
    const { east, channels, rejections } = await eastAnd(tlsSite('west'))
    const socket = await rawTls(east, material.get('rogue-west') as TcpTlsMaterial)
    await new Promise<void>((resolve) => socket.once('close', () => resolve()))
    await until(() => rejections.length > 0)
    expect(rejections[0]).toMatchObject({ claimedSite: undefined, direction: 'inbound' })
    expect(rejections[0]?.reason).toMatch(/not trusted/)
    expect(channels).toEqual([])
  })

  it('once authenticated, the same connection carries frames up to the channel limit', async () => {
    const west = tlsSite('west')
    const { channels } = await eastAnd(west)
    const near = await west.connect('east', 'svc')
    await until(() => channels.length === 1)
    const big = new Uint8Array(1024 * 1024).fill(7)
    const sent = near.send(big)
    const got = await (channels[0] as Channel).frames()[Symbol.asyncIterator]().next()
    await sent
    expect((got.value as Uint8Array).byteLength).toBe(big.byteLength)
    await near.close()
  })
})

describe('tcp network: plaintext only on loopback', () => {
  it.each([
    ['a non-loopback listen host', { listen: { host: '0.0.0.0', port: 0 }, peers: {} }],
    ['a non-loopback peer host', { listen: { port: 0 }, peers: { west: { host: '10.1.2.3', port: 7402 } } }],
    ['a host name other than localhost', { listen: { port: 0 }, peers: { west: { host: 'west.example.com', port: 7402 } } }],
  ])('plaintext with %s is refused at construction with E_INVALID_INPUT', (_, options) => {
    expect(() => tcpNetwork({ site: 'east', plaintext: true, ...options })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/loopback/) }),
    )
  })

  it('a plaintext port refuses a non-loopback peer added later', async () => {
    const port = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true })
    open.push(port)
    expect(() => port.setPeer('west', { host: '192.0.2.10', port: 7402 })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    port.setPeer('west', { host: '::1', port: 7402 })
  })

  it('without tls and without plaintext: true, construction is refused', () => {
    expect(() => tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {} })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/tls/) }),
    )
  })

  it('TLS allows any address', async () => {
    const port = tcpNetwork({ site: 'east', listen: { host: '127.0.0.1', port: 0 }, peers: { west: { host: '192.0.2.10', port: 7402 } }, tls: material.get('east') as TcpTlsMaterial })
    open.push(port)
    expect((await port.address()).port).toBeGreaterThan(0)
  })
})

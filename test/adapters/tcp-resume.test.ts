import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { isDrError } from '../../src/kernel/errors.js'
import type { Channel } from '../../src/ports/network.js'
import { MemoryNetworkFabric } from '../../src/adapters/memory/network.js'
import { tcpNetwork, type TcpNetwork } from '../../src/adapters/tcp/tcp-network.js'
import { ResumableReceiver, type ReceiveOutcome, type ReceivedChunk, type ResumeStore } from '../../src/adapters/tcp/resumable-receiver.js'
import { ResumableSender, sendResumable } from '../../src/adapters/tcp/resumable-sender.js'
import { encodeResumable, decodeResumable } from '../../src/adapters/tcp/resumable-protocol.js'
import { TcpFaultProxy } from '../fixtures/tcp-proxy.js'

const KiB = 1024
const MiB = 1024 * KiB

/** Waits, turn by turn of the event loop, until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1))
}

/** A receiving site: a listener that serves every channel with one receiver and remembers how each ended. */
function serveWith(receiver: ResumableReceiver): { onChannel: (channel: Channel) => void; outcomes: Array<ReceiveOutcome | unknown> } {
  const outcomes: Array<ReceiveOutcome | unknown> = []
  return {
    outcomes,
    onChannel: (channel) => {
      receiver.serve(channel).then(
        (outcome) => outcomes.push(outcome),
        (error: unknown) => outcomes.push(error),
      )
    },
  }
}

/** Records the chunks a receiver applies and checks they come in order, once each. */
function chunkLog(expected?: (index: number) => Uint8Array): { chunks: number[]; onChunk: (chunk: ReceivedChunk) => void } {
  const chunks: number[] = []
  return {
    chunks,
    onChunk: (chunk) => {
      expect(chunk.index, 'chunks arrive in order, once each').toBe(chunks.length)
      if (expected !== undefined) expect(Buffer.compare(Buffer.from(chunk.data), Buffer.from(expected(chunk.index)))).toBe(0)
      chunks.push(chunk.index)
    },
  }
}

async function sites(): Promise<{ east: TcpNetwork; west: TcpNetwork; proxy: TcpFaultProxy; close: () => Promise<void> }> {
  const east = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true })
  const west = tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true })
  const proxy = await TcpFaultProxy.start(await west.address())
  east.setPeer('west', proxy.address)
  return {
    east,
    west,
    proxy,
    close: async () => {
      await Promise.all([east.close(), west.close()])
      await proxy.close()
    },
  }
}

describe('tcp resumable transfer', () => {
  it('a 64 MiB transfer in 256 KiB chunks, cut mid-chunk several times, applies every chunk once in order and re-sends only what was in flight', async () => {
    const chunkBytes = 256 * KiB
    const volume = randomBytes(64 * MiB)
    const chunkCount = volume.length / chunkBytes
    const chunkAt = (index: number): Uint8Array => volume.subarray(index * chunkBytes, (index + 1) * chunkBytes)
    const { east, west, proxy, close } = await sites()
    try {
      const log = chunkLog(chunkAt)
      const receiver = new ResumableReceiver({ onChunk: log.onChunk })
      const served = serveWith(receiver)
      await west.listen('replication', served.onChannel)
      const sender = new ResumableSender({
        transferId: 'volume-db@42',
        chunk: (index) => (index < chunkCount ? chunkAt(index) : undefined),
        window: 8,
      })
      // Cut points in bytes of each connection's sender-to-receiver stream: mid-chunk, in the handshake, and
      // right after the "where were we" question of a resumed connection.
      const perChunk = chunkBytes + 26
      const cuts = [Math.floor(3.4 * perChunk), Math.floor(10.7 * perChunk), 40, Math.floor(25.5 * perChunk), 200, Math.floor(0.5 * perChunk), Math.floor(60.9 * perChunk)]
      let cutsMade = 0
      const armNext = (): void => {
        const next = cuts[cutsMade]
        if (next !== undefined) proxy.cutUpAfter(next, () => {
          cutsMade++
          armNext()
        })
      }
      armNext()
      const outcome = await sendResumable(sender, { connect: () => east.connect('west', 'replication'), attempts: 20, backoffMs: 5 })

      expect(outcome).toEqual({ transferId: 'volume-db@42', chunks: chunkCount })
      expect(cutsMade).toBe(cuts.length)
      expect(log.chunks).toEqual(Array.from({ length: chunkCount }, (_, i) => i))
      expect(receiver.position('volume-db@42')).toBe(chunkCount)

      const attempts = sender.attempts
      expect(attempts.length).toBeGreaterThanOrEqual(2)
      expect(attempts.at(-1)?.outcome).toBe('complete')
      const windowBytes = sender.window * chunkBytes
      for (const attempt of attempts) expect(attempt.bytesResent).toBeLessThanOrEqual(windowBytes)
      // A resumed connection starts at the receiver's position, never from zero once anything was acknowledged.
      for (let i = 1; i < attempts.length; i++) {
        const before = attempts[i - 1]
        const now = attempts[i]
        expect(now?.resumedFrom).toBeGreaterThanOrEqual(before?.resumedFrom ?? 0)
        if ((before?.chunksSent ?? 0) > sender.window) expect(now?.resumedFrom).toBeGreaterThan(before?.resumedFrom ?? 0)
      }
      const resent = attempts.reduce((sum, attempt) => sum + attempt.bytesResent, 0)
      const sent = attempts.reduce((sum, attempt) => sum + attempt.bytesSent, 0)
      expect(sent).toBe(volume.length + resent)
      expect(resent).toBeLessThanOrEqual(cuts.length * windowBytes)
    } finally {
      await close()
    }
  })

  it('resumes from the position a restarted receiver kept in its store', async () => {
    const stored = new Map<string, number>()
    const store: ResumeStore = { load: (id) => stored.get(id), save: (id, next) => void stored.set(id, next) }
    const chunk = (index: number): Uint8Array | undefined => (index < 20 ? new Uint8Array(1000).fill(index) : undefined)
    const fabric = new MemoryNetworkFabric()
    const [east, west] = [fabric.port('east'), fabric.port('west')]

    // First receiver process: applies chunks until its onChunk fails at chunk 7 (its process "dies").
    const firstLog: number[] = []
    const first = new ResumableReceiver({
      store,
      onChunk: ({ index }) => {
        if (index === 7) throw new Error('receiver process died')
        firstLog.push(index)
      },
    })
    const stopFirst = await west.listen('replication', (channel) => void first.serve(channel).catch(() => undefined))
    const sender = new ResumableSender({ transferId: 't1', chunk, window: 4 })
    await expect(sender.run(await east.connect('west', 'replication'))).rejects.toSatisfy((error: unknown) => isDrError(error, 'E_INTERNAL'))
    await stopFirst()
    expect(firstLog).toEqual([0, 1, 2, 3, 4, 5, 6])
    expect(stored.get('t1')).toBe(7)

    // Second receiver process, same store: the sender asks where they were and continues at chunk 7.
    const second = chunkLog((index) => chunk(index + 7) ?? new Uint8Array(0))
    const receiver = new ResumableReceiver({ store, onChunk: (c) => second.onChunk({ ...c, index: c.index - 7 }) })
    await west.listen('replication', (channel) => void receiver.serve(channel).catch(() => undefined))
    await expect(sender.run(await east.connect('west', 'replication'))).resolves.toEqual({ transferId: 't1', chunks: 20 })
    expect(second.chunks).toEqual(Array.from({ length: 13 }, (_, i) => i))
    expect(sender.attempts.at(-1)?.resumedFrom).toBe(7)
    await Promise.all([east.close(), west.close()])
  })

  it('a newer connection for the same transfer takes over from a stale one without applying a chunk twice', async () => {
    const fabric = new MemoryNetworkFabric()
    const [east, west] = [fabric.port('east'), fabric.port('west')]
    const log = chunkLog()
    const receiver = new ResumableReceiver({ onChunk: log.onChunk })
    const served = serveWith(receiver)
    await west.listen('replication', served.onChannel)
    const chunk = (index: number): Uint8Array | undefined => (index < 10 ? new Uint8Array([index]) : undefined)

    // A stale connection that sent chunks 0-2 and then hangs without closing (a half-open connection).
    const stale = await east.connect('west', 'replication')
    const staleFrames = stale.frames()[Symbol.asyncIterator]()
    await stale.send(encodeResumable({ kind: 'open', transferId: 't2' }))
    expect(decodeResumable((await staleFrames.next()).value as Uint8Array)).toEqual({ kind: 'position', transferId: 't2', next: 0 })
    for (const index of [0, 1, 2]) await stale.send(encodeResumable({ kind: 'chunk', index, data: chunk(index) ?? new Uint8Array(0) }))
    let acked = 0
    while (acked < 3) {
      const message = decodeResumable((await staleFrames.next()).value as Uint8Array)
      if (message.kind === 'ack') acked = message.next
    }

    const sender = new ResumableSender({ transferId: 't2', chunk })
    await expect(sender.run(await east.connect('west', 'replication'))).resolves.toEqual({ transferId: 't2', chunks: 10 })
    expect(sender.attempts[0]?.resumedFrom).toBe(3)
    expect(log.chunks).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect((await staleFrames.next()).done, 'the stale connection was closed by the receiver').toBe(true)
    await Promise.all([east.close(), west.close()])
  })

  it('a chunk that does not match its checksum is never applied; the receiver aborts with E_CORRUPT', async () => {
    const fabric = new MemoryNetworkFabric()
    const east = fabric.port('east')
    const west = fabric.port('west')
    const applied: number[] = []
    const receiver = new ResumableReceiver({ onChunk: ({ index }) => void applied.push(index) })
    const served = serveWith(receiver)
    await west.listen('replication', served.onChannel)
    const channel = await east.connect('west', 'replication')
    const frames = channel.frames()[Symbol.asyncIterator]()
    await channel.send(encodeResumable({ kind: 'open', transferId: 't3' }))
    await frames.next()
    await channel.send(encodeResumable({ kind: 'chunk', index: 0, data: new Uint8Array([1, 2, 3]) }))
    const bad = Buffer.from(encodeResumable({ kind: 'chunk', index: 1, data: new Uint8Array([4, 5, 6]) }))
    bad[bad.length - 1] = 7
    await channel.send(bad)
    const answers: string[] = []
    for (;;) {
      const next = await frames.next()
      if (next.done === true) break
      const message = decodeResumable(next.value)
      answers.push(message.kind === 'abort' ? `abort:${message.code}` : message.kind)
    }
    expect(answers).toContain('abort:E_CORRUPT')
    expect(applied).toEqual([0])
    expect(receiver.position('t3')).toBe(1)
    await until(() => served.outcomes.length > 0)
    expect(isDrError(served.outcomes[0], 'E_CORRUPT')).toBe(true)
    await Promise.all([east.close(), west.close()])
  })

  it('a sender gives up after its attempts when the receiver stays unreachable', async () => {
    const { east, proxy, close } = await sites()
    try {
      proxy.partition()
      const sender = new ResumableSender({ transferId: 't4', chunk: () => undefined })
      await expect(sendResumable(sender, { connect: () => east.connect('west', 'replication'), attempts: 3, backoffMs: 1 })).rejects.toSatisfy(
        (error: unknown) => isDrError(error, 'E_UNAVAILABLE'),
      )
      expect(sender.attempts).toEqual([])
    } finally {
      await close()
    }
  })

  it('a failing chunk source stops the transfer with its own error instead of being retried as a network failure', async () => {
    const fabric = new MemoryNetworkFabric()
    const east = fabric.port('east')
    const west = fabric.port('west')
    const log = chunkLog()
    const receiver = new ResumableReceiver({ onChunk: log.onChunk })
    await west.listen('replication', serveWith(receiver).onChannel)
    let connects = 0
    const sender = new ResumableSender({
      transferId: 't5',
      chunk: (index) => {
        if (index === 3) throw new Error('disk read failed')
        return new Uint8Array([index])
      },
    })
    const connect = (): Promise<Channel> => {
      connects++
      return east.connect('west', 'replication')
    }
    await expect(sendResumable(sender, { connect, backoffMs: 1 })).rejects.toSatisfy(
      (error: unknown) => isDrError(error, 'E_INTERNAL') && /disk read failed/.test(error.message),
    )
    expect(connects).toBe(1)
    await until(() => log.chunks.length === 3)
    expect(log.chunks).toEqual([0, 1, 2])
    await Promise.all([east.close(), west.close()])
  })
})

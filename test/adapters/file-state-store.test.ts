import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { appendFile, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { StateStore } from '../../src/kernel/state-store.js'
import { FileStateStore, fileStateStore, openFileStateStore, type FileStateStoreOptions } from '../../src/adapters/file/file-state-store.js'
import { encodeFrame } from '../../src/adapters/file/journal-format.js'
import { RecentBytes } from '../../src/adapters/file/recent-bytes.js'
import { stateStoreConformance, type StateStoreFactory } from '../../src/testkit/state-store-conformance.js'

const made: string[] = []
afterAll(async () => {
  await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })))
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'drkit-journal-'))
  made.push(dir)
  return dir
}

const journalOf = (dir: string): string => path.join(dir, 'journal.log')
const sizeOf = async (file: string): Promise<number> => (await stat(file)).size
const tick = (n: number) => ({ type: 'tick', data: { n, text: `record ${n}` } })

const dirs = new WeakMap<StateStore, string>()
function dirOf(store: StateStore): string {
  const dir = dirs.get(store)
  if (dir === undefined) throw new Error('store not made by this factory')
  return dir
}
async function openIn(dir: string, options: Omit<FileStateStoreOptions, 'dir'> = {}): Promise<FileStateStore> {
  const store = await openFileStateStore({ dir, ...options })
  dirs.set(store, dir)
  return store
}
const factory: StateStoreFactory = {
  create: async () => openIn(await tempDir()),
  dispose: async (store) => {
    await store.close()
    await rm(dirOf(store), { recursive: true, force: true })
  },
  reopen: async (store) => {
    await store.close()
    return openIn(dirOf(store))
  },
}

describe('file journal conformance', () => {
  for (const c of stateStoreConformance(factory)) it(c.name, c.run)
})

describe('file journal recovery', () => {
  it('cuts a torn tail at every byte of the last append, keeps what came before, and appends after it', async () => {
    const dir = await tempDir()
    const store = await openIn(dir, { fsync: 'never' })
    for (let n = 1; n <= 4; n++) await store.append('s', n - 1, [tick(n)])
    const intact = await sizeOf(journalOf(dir))
    await store.append('t', 0, [tick(5), tick(6)])
    await store.close()
    const full = await readFile(journalOf(dir))
    expect(full.length).toBeGreaterThan(intact + 12)
    for (let cut = intact; cut < full.length; cut++) {
      await writeFile(journalOf(dir), full.subarray(0, cut))
      const reopened = await openIn(dir, { fsync: 'never' })
      expect(reopened.stats().truncatedBytes).toBe(cut - intact)
      expect((await reopened.read('s')).map((r) => r.data)).toEqual([1, 2, 3, 4].map((n) => tick(n).data))
      expect(await reopened.version('t')).toBe(0)
      expect(await reopened.listStreams('')).toEqual(['s'])
      expect(await reopened.append('t', 0, [tick(7)])).toBe(1)
      expect(await reopened.append('s', 4, [tick(8)])).toBe(5)
      await reopened.close()
      const again = await openIn(dir, { fsync: 'never' })
      expect(again.stats().truncatedBytes).toBe(0)
      expect((await again.read('t')).map((r) => r.data)).toEqual([tick(7).data])
      expect(await again.version('s')).toBe(5)
      await again.close()
    }
  })

  it('cuts garbage after the last record: zeros, random bytes, a lone magic number, a header with a bad checksum', async () => {
    const dir = await tempDir()
    const store = await openIn(dir, { fsync: 'never' })
    await store.append('s', 0, [tick(1), tick(2)])
    await store.close()
    const clean = await readFile(journalOf(dir))
    const badHeader = Buffer.from(encodeFrame('s', 3, 0, 1, '[{"type":"x","data":1}]'))
    badHeader.writeUInt32LE(badHeader.readUInt32LE(4) ^ 1, 4)
    const tails = [Buffer.alloc(4096), randomBytes(37), Buffer.from([0xff, 0x44, 0x4a, 0x31]), badHeader, badHeader.subarray(0, 20)]
    for (const tail of tails) {
      await writeFile(journalOf(dir), Buffer.concat([clean, tail]))
      const reopened = await openIn(dir, { fsync: 'never' })
      expect(reopened.stats().truncatedBytes).toBe(tail.length)
      expect(await reopened.version('s')).toBe(2)
      await reopened.close()
      expect(await sizeOf(journalOf(dir))).toBe(clean.length)
    }
  })

  it('refuses to open a journal damaged before its end, naming the file and the offset of the damaged record', async () => {
    const dir = await tempDir()
    const store = await openIn(dir, { fsync: 'never' })
    const offsets: number[] = []
    for (let n = 1; n <= 5; n++) {
      offsets.push(await sizeOf(journalOf(dir)))
      await store.append(`s/${n % 2}`, Math.floor((n - 1) / 2), [tick(n)])
    }
    await store.close()
    const clean = await readFile(journalOf(dir))
    const middle = offsets[2] as number
    const size = (offsets[3] as number) - middle
    // magic, checksum, both ends of the length, stream name, records JSON, last byte of the record
    for (const at of [0, 5, 8, 11, 12 + 22, size - 10, size - 1]) {
      const damaged = Buffer.from(clean)
      damaged[middle + at] = (damaged[middle + at] as number) ^ 0x5a
      await writeFile(journalOf(dir), damaged)
      await expect(openFileStateStore({ dir })).rejects.toMatchObject({
        code: 'E_CORRUPT',
        details: { file: journalOf(dir), offset: middle, nextFrameOffset: offsets[3] },
      })
    }
    await writeFile(journalOf(dir), clean)
    const reopened = await openIn(dir)
    expect(await reopened.listStreams('')).toEqual(['s/0', 's/1'])
    await reopened.close()
  })

  it('refuses a record whose checksum is valid but whose version does not follow its stream', async () => {
    const dir = await tempDir()
    const store = await openIn(dir, { fsync: 'never' })
    await store.append('s', 0, [tick(1)])
    await store.close()
    const end = await sizeOf(journalOf(dir))
    await appendFile(journalOf(dir), encodeFrame('s', 3, Date.now(), 1, JSON.stringify([tick(3)])))
    await expect(openFileStateStore({ dir })).rejects.toMatchObject({ code: 'E_CORRUPT', details: { offset: end } })
  })

  it('refuses a file that is not a journal instead of truncating it', async () => {
    const dir = await tempDir()
    await writeFile(journalOf(dir), 'this is somebody else\'s file\n')
    await expect(openFileStateStore({ dir })).rejects.toMatchObject({ code: 'E_CORRUPT', details: { file: journalOf(dir), offset: 0 } })
    expect(await readFile(journalOf(dir), 'utf8')).toBe('this is somebody else\'s file\n')
  })

  it('detects damage that appears after opening when the records are read from the file', async () => {
    const dir = await tempDir()
    const store = await openIn(dir, { fsync: 'never', cacheBytes: 0 })
    await store.append('s', 0, [tick(1)])
    const second = await sizeOf(journalOf(dir))
    await store.append('s', 1, [tick(2)])
    const damaged = await readFile(journalOf(dir))
    damaged[second + 40] = (damaged[second + 40] as number) ^ 0xff
    await writeFile(journalOf(dir), damaged)
    await expect(store.read('s')).rejects.toMatchObject({ code: 'E_CORRUPT', details: { file: journalOf(dir), offset: second } })
    await store.close()
  })

  it('survives SIGKILL of a writing process with every acknowledged record present', async () => {
    const dir = await tempDir()
    const fixture = fileURLToPath(new URL('../fixtures/journal-crash-writer.ts', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    let errors = ''
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()))
    const enough = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.split('\n').length > 400) resolve()
      })
      child.on('exit', (code) => reject(new Error(`writer exited early with ${code}: ${errors}`)))
    })
    await enough
    child.kill('SIGKILL')
    await once(child, 'close')
    const acknowledged = new Map<string, number>()
    for (const line of output.split('\n').slice(0, -1)) {
      const [word, stream, version] = line.split(' ')
      if (word === 'ack' && stream !== undefined) acknowledged.set(stream, Math.max(acknowledged.get(stream) ?? 0, Number(version)))
    }
    expect(acknowledged.size).toBe(4)
    const reopened = await openIn(dir)
    for (const [stream, version] of acknowledged) {
      const records = await reopened.read(stream)
      expect(records.length).toBeGreaterThanOrEqual(version)
      records.forEach((record, index) => expect(record.data).toMatchObject({ version: index + 1 }))
    }
    const stream = 'crash/0'
    const next = await reopened.version(stream)
    expect(await reopened.append(stream, next, [tick(0)])).toBe(next + 1)
    await reopened.close()
  })
})

describe('file journal group commit', () => {
  it('makes 1,000 concurrent appends durable with far fewer fsyncs, all readable after reopen', async () => {
    const dir = await tempDir()
    const store = await openIn(dir)
    const versions = await Promise.all(Array.from({ length: 1000 }, (_, n) => store.append(`g/${n}`, 0, [tick(n)])))
    expect(versions.every((version) => version === 1)).toBe(true)
    const stats = store.stats()
    expect(stats.appends).toBe(1000)
    expect(stats.fsyncs).toBeGreaterThan(0)
    expect(stats.fsyncs).toBeLessThan(50)
    await store.close()
    const reopened = await openIn(dir)
    expect((await reopened.listStreams('g/')).length).toBe(1000)
    for (const n of [0, 1, 499, 999]) expect((await reopened.read(`g/${n}`))[0]?.data).toEqual(tick(n).data)
    await reopened.close()
  })

  it('batches appends that arrive while an fsync is in flight', async () => {
    const store = await openIn(await tempDir())
    await Promise.all(
      Array.from({ length: 32 }, async (_, writer) => {
        for (let version = 0; version < 20; version++) await store.append(`w/${writer}`, version, [tick(version)])
      }),
    )
    const { appends, fsyncs, writes } = store.stats()
    expect(appends).toBe(640)
    expect(fsyncs).toBe(writes)
    expect(fsyncs).toBeLessThan(appends / 4)
    await store.close()
  })

  it('fsyncs once per append with fsync "always" and never with fsync "never"', async () => {
    const always = await openIn(await tempDir(), { fsync: 'always' })
    await Promise.all(Array.from({ length: 20 }, (_, n) => always.append(`a/${n}`, 0, [tick(n)])))
    expect(always.stats()).toMatchObject({ appends: 20, writes: 20, fsyncs: 20 })
    await always.close()
    const never = await openIn(await tempDir(), { fsync: 'never' })
    await Promise.all(Array.from({ length: 20 }, (_, n) => never.append(`a/${n}`, 0, [tick(n)])))
    expect(never.stats()).toMatchObject({ appends: 20, fsyncs: 0 })
    await never.close()
  })

  for (const cacheBytes of [0, 1024 * 1024, undefined]) {
    it(`reads interleaved, multi-record and very large appends back from any version (cacheBytes ${cacheBytes ?? 'default'})`, async () => {
      const dir = await tempDir()
      const options = { fsync: 'never' as const, ...(cacheBytes === undefined ? {} : { cacheBytes }) }
      const store = await openIn(dir, options)
      const filler = 'f'.repeat(2000)
      for (let round = 0; round < 50; round++) {
        await Promise.all(
          ['x', 'y', 'z'].map((stream) =>
            store.append(stream, round * 3, [tick(round * 3 + 1), tick(round * 3 + 2), { type: 'pad', data: { n: round * 3 + 3, filler } }]),
          ),
        )
      }
      const huge = 'h'.repeat(3 * 1024 * 1024)
      await store.append('x', 150, [{ type: 'huge', data: huge }])
      await store.append('x', 151, [tick(152)])
      const check = async (reader: FileStateStore): Promise<void> => {
        for (const after of [0, 1, 2, 3, 74, 149, 150, 151]) {
          const records = await reader.read('x', after)
          expect(records.map((r) => r.version)).toEqual(Array.from({ length: 152 - after }, (_, i) => after + i + 1))
        }
        expect((await reader.read('x', 150))[0]?.data).toBe(huge)
        expect((await reader.read('y', 100)).map((r) => (r.data as { n: number }).n)).toEqual(Array.from({ length: 50 }, (_, i) => 101 + i))
      }
      await check(store)
      await store.close()
      const reopened = await openIn(dir, options)
      await check(reopened)
      await reopened.close()
    })
  }
})

describe('RecentBytes', () => {
  const MiB = 1024 * 1024
  it('keeps one contiguous range within its budget, restarts after a gap, and forgets a cut end', () => {
    const recent = new RecentBytes(2 * MiB)
    const bytes = randomBytes(3 * MiB)
    recent.add(100, bytes.subarray(0, MiB))
    recent.add(100 + MiB, bytes.subarray(MiB))
    expect(recent.read(100, 10)).toBeUndefined()
    const tail = 100 + 3 * MiB
    expect(recent.read(tail - MiB - 50, MiB)?.equals(bytes.subarray(2 * MiB - 50, 3 * MiB - 50))).toBe(true)
    expect(recent.read(tail - 10, 11)).toBeUndefined()
    recent.add(tail - 20, bytes.subarray(3 * MiB - 20))
    expect(recent.read(tail - 10, 10)?.equals(bytes.subarray(3 * MiB - 10))).toBe(true)
    recent.truncate(tail - 5)
    expect(recent.read(tail - 10, 10)).toBeUndefined()
    recent.add(tail - 5, Buffer.from('fresh'))
    expect(recent.read(tail - 10, 10)?.toString('latin1')).toBe(`${bytes.subarray(3 * MiB - 10, 3 * MiB - 5).toString('latin1')}fresh`)
    recent.add(tail + 1000, Buffer.from('after a gap'))
    expect(recent.read(tail - 10, 10)).toBeUndefined()
    expect(recent.read(tail + 1000, 11)?.toString()).toBe('after a gap')
    const none = new RecentBytes(0)
    none.add(0, Buffer.from('x'))
    expect(none.read(0, 1)).toBeUndefined()
  })
})

describe('file journal directory', () => {
  it('lets only one store open a directory at a time (E_CONFLICT), and releases it on close', async () => {
    const dir = await tempDir()
    const first = await openIn(dir)
    await expect(openFileStateStore({ dir })).rejects.toMatchObject({ code: 'E_CONFLICT', details: { pid: process.pid } })
    const lazy = fileStateStore({ dir })
    await expect(lazy.version('s')).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await first.close()
    expect(await lazy.version('s')).toBe(0)
    await lazy.close()
  })

  it('takes over a lock left by a dead process or unreadable, but not one from another host', async () => {
    const dir = await tempDir()
    const lock = path.join(dir, 'journal.lock')
    const child = spawn(process.execPath, ['-e', ''])
    await once(child, 'close')
    await writeFile(lock, JSON.stringify({ pid: child.pid, host: os.hostname() }))
    await (await openIn(dir)).close()
    await writeFile(lock, 'not a lock')
    await (await openIn(dir)).close()
    await writeFile(lock, JSON.stringify({ pid: 1, host: `not-${os.hostname()}` }))
    await expect(openFileStateStore({ dir })).rejects.toMatchObject({ code: 'E_CONFLICT', details: { host: `not-${os.hostname()}` } })
    expect((await readdir(dir)).sort()).toEqual(['journal.lock', 'journal.log', 'snapshots'])
  })

  it('opens lazily: nothing is created before the first call, and bad options are refused at once', async () => {
    const dir = path.join(await tempDir(), 'nested', 'state')
    const store = fileStateStore({ dir })
    expect(store.kind).toBe('file')
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' })
    await store.append('s', 0, [tick(1)])
    expect((await readdir(dir)).sort()).toEqual(['journal.lock', 'journal.log', 'snapshots'])
    await store.close()
    expect((await readdir(dir)).sort()).toEqual(['journal.log', 'snapshots'])
    await fileStateStore({ dir: path.join(dir, 'never-opened') }).close()
    expect(() => fileStateStore({ dir: '' })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    expect(() => fileStateStore({ dir, fsync: 'sometimes' as 'never' })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
  })

  it('reports a damaged snapshot file with E_CORRUPT, lets a new save replace it, and clears interrupted saves', async () => {
    const dir = await tempDir()
    const store = await openIn(dir)
    await store.saveSnapshot({ stream: 's', version: 3, state: { total: 6 } })
    await store.close()
    const snapshots = path.join(dir, 'snapshots')
    const [file] = await readdir(snapshots)
    expect(file).toBeDefined()
    const bytes = await readFile(path.join(snapshots, file as string))
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x01
    await writeFile(path.join(snapshots, file as string), bytes)
    await writeFile(path.join(snapshots, `${file as string}.123.abcd.tmp`), 'half a save')
    const reopened = await openIn(dir)
    expect(await readdir(snapshots)).toEqual([file])
    await expect(reopened.loadSnapshot('s')).rejects.toMatchObject({ code: 'E_CORRUPT', details: { stream: 's' } })
    await reopened.saveSnapshot({ stream: 's', version: 2, state: { total: 3 } })
    expect(await reopened.loadSnapshot('s')).toEqual({ stream: 's', version: 2, state: { total: 3 } })
    await reopened.close()
  })
})

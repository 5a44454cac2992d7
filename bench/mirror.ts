/**
 * Mirror benchmarks: one relationship between two local storage pools (real files, fsync off on both pools and
 * on every baseline, so all of them write to the page cache) over TCP on loopback (plaintext), with a 1 GiB
 * volume of 4 KiB blocks filled with random data (`MIRROR_BENCH_MIB` overrides the size). The mirror's TCP
 * traffic passes through a counting relay on loopback (its own process, bench/counting-relay.mts), so "bytes on
 * the wire" are the TCP payload bytes in both directions (framing, headers and acknowledgements included), as
 * rsync's own counters are.
 *
 * - `initial-copy`: MB/s and seconds of the initial copy (create → the destination has played delta set 1),
 *   against a raw socket copy of the same bytes (read from the source pool, sent over a plain TCP socket on
 *   loopback, written to a plain file: the physical limit of this data path) and against rsync copying the same
 *   bytes as a plain image file to an rsync daemon on loopback TCP.
 * - `incremental-1pct`: seconds from the cut to the destination having applied a delta set of 1% random 4 KiB
 *   blocks — the median of `MIRROR_BENCH_SAMPLES` samples (default 5), each with fresh changes — against
 *   `rsync --no-whole-file --inplace` of the same change between the two image files over the same rsync daemon
 *   (median of the same samples; a skipped row when rsync is not installed), and always against the mirror's own
 *   initial copy of the whole volume. The 1-minute load average over the samples is reported too: on a shared
 *   machine it moves every number.
 * - `incremental-1pct-bytes`: TCP payload bytes of that delta set (median), against the changed bytes (aim:
 *   ≤ 1.1×) and against the bytes rsync sent and received.
 */
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import * as net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { openLocalStorage, type LocalStorage } from '../src/adapters/local/local-storage.js'
import { tcpNetwork } from '../src/adapters/tcp/tcp-network.js'
import { DrError, EventBus, WorkflowEngine, systemClock } from '../src/kernel/index.js'
import { memoryStateStore } from '../src/kernel/memory-state-store.js'
import type { StateStore } from '../src/kernel/state-store.js'
import { openMirrorModule, type MirrorEvents } from '../src/modules/mirror/index.js'
import { timed, type Report } from './report.js'

const MiB = 1024 * 1024
const BLOCK = 4096
const token = { scope: 'bench', value: 1 }
const run$ = promisify(execFile)
const NO_RSYNC = 'rsync is not installed (apt-get install -y rsync)'

function mbPerSecond(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000)
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return (server.address() as net.AddressInfo).port
}

/** Reads the volume in 1 MiB pieces and sends it over a plain loopback socket, piped into a plain file. */
async function rawSocketCopy(source: LocalStorage, size: number, file: string): Promise<number> {
  let resolveDone: () => void = () => undefined
  const done = new Promise<void>((resolve) => (resolveDone = resolve))
  const server = net.createServer((socket) => {
    const target = createWriteStream(file)
    target.on('finish', () => resolveDone())
    socket.pipe(target)
  })
  const port = await listen(server)
  const { ms } = await timed(async () => {
    const client = net.connect(port, '127.0.0.1')
    await new Promise<void>((resolve) => client.once('connect', () => resolve()))
    for (let at = 0; at < size; at += MiB) {
      const data = await source.read('db', at, MiB)
      if (!client.write(data)) await new Promise<void>((resolve) => client.once('drain', () => resolve()))
    }
    client.end()
    await done
  })
  server.close()
  return ms
}

/**
 * The counting relay of bench/counting-relay.mts, in its own process, in front of `target`: its address, the bytes
 * it has forwarded so far in both directions, and how to stop it.
 */
async function countingRelay(target: { readonly host: string; readonly port: number }) {
  const relay = fork(fileURLToPath(new URL('./counting-relay.mts', import.meta.url)), [target.host, String(target.port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const reply = <M extends { readonly kind: string }>(kind: M['kind']): Promise<M> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: M): void => {
        if (message.kind !== kind) return
        relay.off('message', onMessage)
        relay.off('exit', onExit)
        resolve(message)
      }
      const onExit = (): void => reject(new Error('the counting relay exited'))
      relay.on('message', onMessage)
      relay.once('exit', onExit)
    })
  const { port } = await reply<{ kind: 'listening'; port: number }>('listening')
  return {
    address: { host: '127.0.0.1', port },
    bytes: async (): Promise<number> => {
      const counted = reply<{ kind: 'count'; bytes: number }>('count')
      relay.send({ kind: 'count' })
      return (await counted).bytes
    },
    close: async () => {
      const exited = new Promise((resolve) => relay.once('exit', resolve))
      relay.disconnect()
      await exited
    },
  }
}

/** An rsync daemon on loopback TCP serving `dir` as module `bench`; undefined when rsync is not installed. */
async function rsyncDaemon(dir: string): Promise<{ url: string; process: ChildProcess } | undefined> {
  try {
    await run$('rsync', ['--version'])
  } catch {
    process.stderr.write('mirror bench: rsync is not installed (apt-get install -y rsync); its cases are reported as skipped.\n')
    return undefined
  }
  const probe = net.createServer()
  const port = await listen(probe)
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const served = path.join(dir, 'rsync')
  await mkdir(served)
  const config = path.join(dir, 'rsyncd.conf')
  const id = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
  await writeFile(config, `use chroot = no\n[bench]\n  path = ${served}\n  read only = false\n  uid = ${id.uid}\n  gid = ${id.gid}\n`)
  const daemon = spawn('rsync', ['--daemon', '--no-detach', `--config=${config}`, `--port=${port}`, '--address=127.0.0.1'], { stdio: 'ignore' })
  const deadline = Date.now() + 10_000
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1')
      socket.once('connect', () => (socket.destroy(), resolve(true)))
      socket.once('error', () => resolve(false))
    })
    if (up) break
    if (Date.now() > deadline) throw new Error('the rsync daemon did not start')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { url: `rsync://127.0.0.1:${port}/bench`, process: daemon }
}

/** Runs rsync from `file` to `target` on the daemon; returns its time and the bytes it sent plus received. */
async function rsync(args: readonly string[], file: string, target: string): Promise<{ ms: number; bytes: number }> {
  const { ms, result } = await timed(() => run$('rsync', [...args, '--inplace', '--stats', '--no-human-readable', file, target]))
  const count = (label: string): number => Number((new RegExp(`${label}: ([\\d,]+)`).exec(result.stdout)?.[1] ?? 'NaN').replace(/,/g, ''))
  return { ms, bytes: count('Total bytes sent') + count('Total bytes received') }
}

/**
 * A mirror system over two tcp ports on loopback; with `relay`, east reaches west through a counting relay (an
 * extra hop, used only where bytes are counted, so it does not slow the initial copy down).
 */
async function mirrorSystem(east: LocalStorage, west: LocalStorage, stateStore: StateStore, relay: boolean) {
  const networks = {
    east: tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true }),
    west: tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true }),
  }
  const counter = relay ? await countingRelay(await networks.west.address()) : undefined
  networks.east.setPeer('west', counter?.address ?? (await networks.west.address()))
  networks.west.setPeer('east', await networks.east.address())
  const events = new EventBus<MirrorEvents>()
  const module = await openMirrorModule({
    stateStore,
    workflows: new WorkflowEngine({ stateStore, clock: systemClock }),
    sites: (site) => {
      if (site === 'east') return { storage: east, network: networks.east }
      if (site === 'west') return { storage: west, network: networks.west }
      throw new DrError('E_NOT_FOUND', `site "${site}" is not configured`)
    },
    events,
    clock: systemClock,
    token: () => token,
  })
  return {
    mirrors: module.facade,
    events,
    wire: async (): Promise<number> => (counter === undefined ? Number.NaN : counter.bytes()),
    close: async () => {
      await module.close()
      await networks.east.close()
      await networks.west.close()
      await counter?.close()
    },
  }
}

/** Resolves once the destination reported delta set `n` applied (events, not status polling: status computes lag). */
function applied(events: EventBus<MirrorEvents>, n: number): Promise<void> {
  return new Promise((resolve) => {
    const off = events.on('mirror.deltaSetApplied', (event) => {
      if (event.payload.deltaSet >= n) {
        off()
        resolve()
      }
    })
  })
}

/** Writes `size` bytes of random data to the volume and to a plain image file with the same content. */
async function fill(east: LocalStorage, size: number, file: string): Promise<void> {
  await east.createVolume({ name: 'db', sizeBytes: size, blockSize: BLOCK }, token)
  const image = await open(file, 'w')
  for (let at = 0; at < size; at += MiB) {
    const data = new Uint8Array(randomBytes(MiB))
    await east.write('db', at, data, token)
    await image.write(data, 0, MiB, at)
  }
  await image.close()
}

/** Writes new random data to 1% of the blocks, on the volume and in the image file `file`. */
async function change(east: LocalStorage, size: number, file: string): Promise<number> {
  const blocks = size / BLOCK
  const changed = new Set<number>()
  while (changed.size < Math.max(1, Math.floor(blocks / 100))) changed.add(randomInt(blocks))
  const modified = await open(file, 'r+')
  for (const b of changed) {
    const data = new Uint8Array(randomBytes(BLOCK))
    await east.write('db', b * BLOCK, data, token)
    await modified.write(data, 0, BLOCK, b * BLOCK)
  }
  await modified.close()
  return changed.size * BLOCK
}

/** Runs the mirror suite. */
export async function run(report: Report): Promise<void> {
  const size = Number(process.env['MIRROR_BENCH_MIB'] ?? 1024) * MiB
  const dir = await mkdtemp(path.join(os.tmpdir(), 'drkit-bench-mirror-'))
  const east = await openLocalStorage({ dir: path.join(dir, 'east'), fsync: false })
  const west = await openLocalStorage({ dir: path.join(dir, 'west'), fsync: false })
  const daemon = await rsyncDaemon(dir)
  try {
    const image = path.join(dir, 'image.img')
    await fill(east, size, image)
    const rawMs = await rawSocketCopy(east, size, path.join(dir, 'raw.img'))
    await rm(path.join(dir, 'raw.img'))
    const stateStore = memoryStateStore()
    const first = await mirrorSystem(east, west, stateStore, false)
    const copy = await timed(async () => {
      const played = applied(first.events, 1)
      await first.mirrors.create({ id: 'bench', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '1h', highWaterMark: '1GiB', probe: '1h' }, transfer: { chunkSize: '1MiB' } })
      await played
    })
    await first.close()
    const name = `initial-copy-${size / MiB}MiB`
    const raw = { baseline: 'raw socket copy (loopback; pool read, plain file write)', baselineValue: mbPerSecond(size, rawMs) }
    report({ case: name, metric: 'throughput', value: mbPerSecond(size, copy.ms), unit: 'MB/s', ...raw })
    report({ case: name, metric: 'time', value: copy.ms / 1000, unit: 's', baseline: raw.baseline, baselineValue: rawMs / 1000 })
    const full = daemon === undefined ? undefined : await rsync([], image, `${daemon.url}/dest.img`)
    if (full === undefined) {
      for (const metric of ['throughput', 'time']) report.skip({ case: name, metric, baseline: 'rsync to an rsync daemon (loopback TCP)', reason: NO_RSYNC })
    } else {
      report({ case: name, metric: 'throughput', value: mbPerSecond(size, copy.ms), unit: 'MB/s', baseline: 'rsync to an rsync daemon (loopback TCP)', baselineValue: mbPerSecond(size, full.ms) })
      report({ case: name, metric: 'time', value: copy.ms / 1000, unit: 's', baseline: 'rsync to an rsync daemon (loopback TCP)', baselineValue: full.ms / 1000 })
    }

    const samples = Math.max(1, Number(process.env['MIRROR_BENCH_SAMPLES'] ?? 5))
    const system = await mirrorSystem(east, west, stateStore, true)
    while (!(await system.mirrors.status('bench')).connected) await new Promise((resolve) => setTimeout(resolve, 10))
    const mine: Array<{ ms: number; wire: number; changed: number }> = []
    const theirs: Array<{ ms: number; bytes: number }> = []
    const loads: number[] = []
    for (let sample = 0; sample < samples; sample++) {
      const changedBytes = await change(east, size, image)
      const wireBefore = await system.wire()
      const next = applied(system.events, ((await system.mirrors.status('bench')).lastCut?.deltaSet ?? 0) + 1)
      const incremental = await timed(async () => {
        await system.mirrors.cutNow('bench')
        await next
      })
      loads.push(os.loadavg()[0] ?? 0)
      mine.push({ ms: incremental.ms, wire: (await system.wire()) - wireBefore, changed: changedBytes })
      if (daemon !== undefined) theirs.push(await rsync(['--no-whole-file', '--ignore-times'], image, `${daemon.url}/dest.img`))
    }
    await system.close()
    const changed = median(mine.map((m) => m.changed))
    const wire = median(mine.map((m) => m.wire))
    const time = median(mine.map((m) => m.ms)) / 1000
    report({ case: 'incremental-1pct', metric: `time (median of ${samples})`, value: time, unit: 's', baseline: `the mirror's initial copy of the whole ${size / MiB} MiB volume`, baselineValue: copy.ms / 1000 })
    report({ case: 'incremental-1pct', metric: '1-minute load average during the samples (median)', value: median(loads), unit: 'load', baseline: 'CPU cores', baselineValue: os.cpus().length })
    report({ case: 'incremental-1pct-bytes', metric: `bytes on the wire (median of ${samples})`, value: wire, unit: 'B', baseline: 'changed bytes', baselineValue: changed })
    const rsyncBaseline = 'rsync --no-whole-file --inplace to an rsync daemon (loopback TCP)'
    if (daemon === undefined) {
      report.skip({ case: 'incremental-1pct', metric: `time (median of ${samples})`, baseline: rsyncBaseline, reason: NO_RSYNC })
      report.skip({ case: 'incremental-1pct-bytes', metric: `bytes on the wire (median of ${samples})`, baseline: 'rsync bytes sent + received', reason: NO_RSYNC })
    } else {
      report({ case: 'incremental-1pct', metric: `time (median of ${samples})`, value: time, unit: 's', baseline: rsyncBaseline, baselineValue: median(theirs.map((r) => r.ms)) / 1000 })
      report({ case: 'incremental-1pct-bytes', metric: `bytes on the wire (median of ${samples})`, value: wire, unit: 'B', baseline: 'rsync bytes sent + received', baselineValue: median(theirs.map((r) => r.bytes)) })
    }
  } finally {
    daemon?.process.kill()
    await east.close()
    await west.close()
    await rm(dir, { recursive: true, force: true })
  }
}

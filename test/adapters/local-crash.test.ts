import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { openLocalStorage, type LocalStorage } from '../../src/adapters/local/local-storage.js'
import {
  CRASH_BLOCK,
  CRASH_SIZE,
  CRASH_VOLUME,
  crashPattern,
  type CrashLine,
} from '../fixtures/local-crash-writer.js'

const fixture = fileURLToPath(new URL('../fixtures/local-crash-writer.ts', import.meta.url))
type Begin = Extract<CrashLine, { kind: 'begin' }>

/** What the pool must hold: the live volume and every snapshot, as acknowledged so far. */
interface Model {
  readonly live: Uint8Array
  readonly snapshots: Map<string, Uint8Array>
}

/** Runs the writer on `dir`, kills it with SIGKILL `killAfterMs` after it is ready, and returns its log. */
async function runWriter(dir: string, killAfterMs: number): Promise<CrashLine[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  let timer: NodeJS.Timeout | undefined
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString()
    if (timer === undefined && out.includes('"ready"')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
  })
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, sig) => resolve(sig)))
  clearTimeout(timer)
  if (signal !== 'SIGKILL') throw new Error(`writer exited on its own (signal ${String(signal)}): ${err}`)
  const lines = out.split('\n')
  lines.pop()
  return lines.map((line) => JSON.parse(line) as CrashLine)
}

function trimModel(model: Model, offset: number, length: number): void {
  const first = Math.ceil(offset / CRASH_BLOCK) * CRASH_BLOCK
  const end = Math.floor((offset + length) / CRASH_BLOCK) * CRASH_BLOCK
  if (first < end) model.live.fill(0, first, end)
}

function applyOp(model: Model, op: Begin): void {
  switch (op.op) {
    case 'write':
      model.live.set(crashPattern(op.seed, op.length), op.offset)
      return
    case 'trim':
      trimModel(model, op.offset, op.length)
      return
    case 'writeRanges':
      for (const change of op.changes) {
        if (change.seed === null) trimModel(model, change.offset, change.length)
        else model.live.set(crashPattern(change.seed, change.length), change.offset)
      }
      return
    case 'snapshot':
      model.snapshots.set(op.name, model.live.slice())
      return
    case 'deleteSnapshot':
      model.snapshots.delete(op.name)
      return
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))
}

/**
 * Folds the writer's log into the model, then settles the operations that were started but not acknowledged:
 * each must have happened entirely or not at all. Returns how many acknowledged operations the log held.
 */
async function settle(storage: LocalStorage, model: Model, lines: readonly CrashLine[]): Promise<number> {
  const pending = new Map<number, Begin>()
  let acked = 0
  for (const line of lines) {
    if (line.kind === 'begin') pending.set(line.id, line)
    if (line.kind === 'ack') {
      const op = pending.get(line.id)
      if (op === undefined) throw new Error(`ack of unknown operation ${line.id}`)
      pending.delete(line.id)
      applyOp(model, op)
      acked++
    }
  }
  const names = new Set((await storage.listSnapshots(CRASH_VOLUME)).map((s) => s.name))
  for (const op of pending.values()) {
    if ('name' in op) {
      if (names.has(op.name) === (op.op === 'snapshot')) applyOp(model, op)
      continue
    }
    const { offset, length } = span(op)
    const actual = await storage.read(CRASH_VOLUME, offset, length)
    const after = { live: model.live.slice(), snapshots: model.snapshots }
    applyOp(after, op)
    const before = model.live.subarray(offset, offset + length)
    if (same(actual, after.live.subarray(offset, offset + length))) applyOp(model, op)
    else expect(same(actual, before), `unacknowledged ${op.op} ${op.id} is either whole or absent`).toBe(true)
  }
  return acked
}

/** The bytes an I/O operation may change: its range, or for `writeRanges` the span of all its changes (one lane). */
function span(op: Extract<Begin, { op: 'write' | 'trim' | 'writeRanges' }>): { offset: number; length: number } {
  if (op.op !== 'writeRanges') return { offset: op.offset, length: op.length }
  const offset = Math.min(...op.changes.map((c) => c.offset))
  return { offset, length: Math.max(...op.changes.map((c) => c.offset + c.length)) - offset }
}

describe('local storage survives kill -9', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })

  it('every acknowledged write, writeRanges, trim and snapshot is there after SIGKILL at a random moment, and an unacknowledged one is whole or absent, five times over', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'drkit-local-crash-'))
    dirs.push(dir)
    const model: Model = { live: new Uint8Array(CRASH_SIZE), snapshots: new Map() }
    let acked = 0
    for (let cycle = 0; cycle < 5; cycle++) {
      const lines = await runWriter(dir, 150 + Math.floor(Math.random() * 450))
      const storage = await openLocalStorage({ dir })
      try {
        acked += await settle(storage, model, lines)
        expect(same(await storage.read(CRASH_VOLUME, 0, CRASH_SIZE), model.live), `live volume after cycle ${cycle}`).toBe(true)
        const snapshots = (await storage.listSnapshots(CRASH_VOLUME)).map((s) => s.name)
        expect(new Set(snapshots)).toEqual(new Set(model.snapshots.keys()))
        for (const [name, data] of model.snapshots) {
          expect(same(await storage.read(CRASH_VOLUME, 0, CRASH_SIZE, { snapshot: name }), data), `snapshot ${name}`).toBe(true)
        }
        expect((await storage.verify()).problems).toEqual([])
      } finally {
        await storage.close()
      }
    }
    expect(acked).toBeGreaterThan(20)
  }, 60_000)
})

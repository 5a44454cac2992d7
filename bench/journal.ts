/**
 * File journal benchmarks.
 *
 * - `append-group-commit`: appends per second with group commit (32 writers, 20,000 single-record appends,
 *   each durable before it resolves), against the same workload with one write+fsync per append.
 * - `replay-1m`: time to open a journal of 1,000,000 events (1,000 streams × 1,000 single-record appends) and
 *   fold every stream, against the time `fs.readFile` takes to read the same bytes (the physical limit).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { openFileStateStore } from '../src/adapters/file/file-state-store.js'
import type { FsyncMode } from '../src/adapters/file/group-commit.js'
import { DrError } from '../src/kernel/errors.js'
import { timed, type Report } from './report.js'

const WRITERS = 32
const APPENDS = 20_000
const REPLAY_STREAMS = 1_000
const REPLAY_EVENTS_PER_STREAM = 1_000

const event = (n: number) => ({ type: 'step.completed', data: { index: n, name: 'copy', result: { bytes: n * 4096 } } })

async function appendsPerSecond(dir: string, fsync: FsyncMode): Promise<number> {
  const store = await openFileStateStore({ dir, fsync })
  const perWriter = APPENDS / WRITERS
  const { ms } = await timed(() =>
    Promise.all(
      Array.from({ length: WRITERS }, async (_, writer) => {
        for (let version = 0; version < perWriter; version++) await store.append(`writer/${writer}`, version, [event(version)])
      }),
    ),
  )
  await store.close()
  return APPENDS / (ms / 1000)
}

async function writeReplayJournal(dir: string): Promise<void> {
  const store = await openFileStateStore({ dir, fsync: 'never' })
  for (let version = 0; version < REPLAY_EVENTS_PER_STREAM; version++) {
    await Promise.all(Array.from({ length: REPLAY_STREAMS }, (_, stream) => store.append(`workflow/${stream}`, version, [event(version)])))
  }
  await store.close()
}

async function openAndFold(dir: string): Promise<number> {
  const store = await openFileStateStore({ dir, fsync: 'never' })
  let events = 0
  let bytes = 0
  for (const stream of await store.listStreams('')) {
    for (const record of await store.read(stream)) {
      events++
      bytes += (record.data as { result: { bytes: number } }).result.bytes
    }
  }
  await store.close()
  if (events !== REPLAY_STREAMS * REPLAY_EVENTS_PER_STREAM || bytes <= 0) {
    throw new DrError('E_INTERNAL', `replay folded ${events} events, expected ${REPLAY_STREAMS * REPLAY_EVENTS_PER_STREAM}`)
  }
  return events
}

/** Runs the journal suite, reporting each case through `report`. */
export async function run(report: Report): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'drkit-bench-journal-'))
  try {
    const group = await appendsPerSecond(path.join(root, 'group'), 'group')
    const always = await appendsPerSecond(path.join(root, 'always'), 'always')
    report({
      case: 'append-group-commit',
      metric: `durable appends per second, ${WRITERS} writers, ${APPENDS} appends, fsync group`,
      value: group,
      unit: 'appends/s',
      baseline: 'one-fsync-per-append',
      baselineValue: always,
    })

    const replayDir = path.join(root, 'replay')
    await writeReplayJournal(replayDir)
    const journal = path.join(replayDir, 'journal.log')
    await readFile(journal) // warm the page cache for both measurements alike
    const raw = await timed(() => readFile(journal))
    const replay = await timed(() => openAndFold(replayDir))
    report({
      case: 'replay-1m',
      metric: `open + fold of ${replay.result} events (${(raw.result.length / 1e6).toFixed(1)} MB journal)`,
      value: replay.ms,
      unit: 'ms',
      baseline: 'fs.readFile of the journal',
      baselineValue: raw.ms,
    })
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

/**
 * etcd state store benchmarks, each against the file journal (`openFileStateStore`, group commit) on the same
 * workload in the same run. Uses the etcd at `DRKIT_ETCD_ENDPOINTS`, or starts a throw-away single-member one
 * from `/usr/bin/etcd` with etcd's default timings (`etcd-server.mts`, data under `os.tmpdir()`); both journals
 * are durable (etcd fsyncs its WAL). Append cases
 * run after a warm-up, twice, alternating with their baselines, and report the best of each.
 *
 * - `append-32-writers`: single-record appends per second, 32 concurrent writers on their own streams, 4,000
 *   appends, each durable before it resolves.
 * - `append-1-writer`: the same with one writer (one append in flight: a round trip to etcd per append).
 * - `replay-20k`: time for a freshly opened store to list and read back 200 streams × 100 records, against
 *   opening and folding the same journal in the file store.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { randomUUID } from 'node:crypto'
import { Etcd3 } from 'etcd3'
import { openFileStateStore } from '../src/adapters/file/file-state-store.js'
import { etcdStateStore } from '../src/adapters/etcd/etcd-state-store.js'
import { DrError } from '../src/kernel/errors.js'
import type { StateStore } from '../src/kernel/state-store.js'
import { startEtcd, type EtcdServer } from './etcd-server.mjs'
import { timed, type Report } from './report.js'

const WRITERS = 32
const APPENDS = 4_000
const SINGLE_APPENDS = 500
const REPLAY_STREAMS = 200
const REPLAY_EVENTS = 100
const ROUNDS = 2

const event = (n: number) => ({ type: 'step.completed', data: { index: n, name: 'copy', result: { bytes: n * 4096 } } })

async function appendsPerSecond(store: StateStore, writers: number, appends: number): Promise<number> {
  const perWriter = appends / writers
  const run = randomUUID()
  const { ms } = await timed(() =>
    Promise.all(
      Array.from({ length: writers }, async (_, writer) => {
        for (let version = 0; version < perWriter; version++) await store.append(`bench/${run}/${writer}`, version, [event(version)])
      }),
    ),
  )
  return appends / (ms / 1000)
}

async function fillReplayJournal(store: StateStore): Promise<void> {
  for (let version = 0; version < REPLAY_EVENTS; version++) {
    await Promise.all(Array.from({ length: REPLAY_STREAMS }, (_, stream) => store.append(`workflow/${stream}`, version, [event(version)])))
  }
}

async function fold(store: StateStore): Promise<number> {
  let events = 0
  for (const stream of await store.listStreams('workflow/')) events += (await store.read(stream)).length
  if (events !== REPLAY_STREAMS * REPLAY_EVENTS) throw new DrError('E_INTERNAL', `replay folded ${events} events, expected ${REPLAY_STREAMS * REPLAY_EVENTS}`)
  return events
}

/** Runs the etcd suite, reporting each case through `report`. */
export async function run(report: Report): Promise<void> {
  const given = process.env['DRKIT_ETCD_ENDPOINTS']
  const server: EtcdServer | undefined = given === undefined || given === '' ? await startEtcd() : undefined
  const hosts = server?.endpoints ?? (given ?? '').split(',')
  const prefix = `drkit-bench/${randomUUID()}`
  const root = await mkdtemp(path.join(os.tmpdir(), 'drkit-bench-etcd-'))
  try {
    const etcd = etcdStateStore({ hosts, prefix: `${prefix}/append` })
    const file = await openFileStateStore({ dir: path.join(root, 'append'), fsync: 'group' })
    // Warm up the connection and the JIT, then take the best of ROUNDS alternating runs of each.
    await appendsPerSecond(etcd, WRITERS, APPENDS / 2)
    await appendsPerSecond(file, WRITERS, APPENDS / 2)
    let etcdMany = 0
    let fileMany = 0
    let etcdOne = 0
    let fileOne = 0
    for (let round = 0; round < ROUNDS; round++) {
      etcdMany = Math.max(etcdMany, await appendsPerSecond(etcd, WRITERS, APPENDS))
      fileMany = Math.max(fileMany, await appendsPerSecond(file, WRITERS, APPENDS))
      etcdOne = Math.max(etcdOne, await appendsPerSecond(etcd, 1, SINGLE_APPENDS))
      fileOne = Math.max(fileOne, await appendsPerSecond(file, 1, SINGLE_APPENDS))
    }
    await etcd.close()
    await file.close()
    report({
      case: 'append-32-writers',
      metric: `durable single-record appends per second on etcd, ${WRITERS} writers, ${APPENDS} appends`,
      value: etcdMany,
      unit: 'appends/s',
      baseline: 'file journal, group commit, same workload',
      baselineValue: fileMany,
    })
    report({
      case: 'append-1-writer',
      metric: `durable single-record appends per second on etcd, 1 writer, ${SINGLE_APPENDS} appends`,
      value: etcdOne,
      unit: 'appends/s',
      baseline: 'file journal, group commit, same workload',
      baselineValue: fileOne,
    })

    const replayPrefix = `${prefix}/replay`
    const filler = etcdStateStore({ hosts, prefix: replayPrefix })
    await fillReplayJournal(filler)
    await filler.close()
    const fileDir = path.join(root, 'replay')
    const fileFiller = await openFileStateStore({ dir: fileDir, fsync: 'never' })
    await fillReplayJournal(fileFiller)
    await fileFiller.close()
    const etcdReplay = await timed(async () => {
      const store = etcdStateStore({ hosts, prefix: replayPrefix })
      try {
        return await fold(store)
      } finally {
        await store.close()
      }
    })
    const fileReplay = await timed(async () => {
      const store = await openFileStateStore({ dir: fileDir, fsync: 'never' })
      try {
        return await fold(store)
      } finally {
        await store.close()
      }
    })
    report({
      case: 'replay-20k',
      metric: `list + read back ${etcdReplay.result} events (${REPLAY_STREAMS} streams) from etcd with a fresh store`,
      value: etcdReplay.ms,
      unit: 'ms',
      baseline: 'file journal open + fold of the same events',
      baselineValue: fileReplay.ms,
    })
  } finally {
    const admin = new Etcd3({ hosts })
    try {
      await admin.delete().prefix(`${prefix}/`)
    } finally {
      admin.close()
    }
    await rm(root, { recursive: true, force: true })
    await server?.stop()
  }
}

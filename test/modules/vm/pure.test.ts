import { describe, expect, it } from 'vitest'
import { produce } from 'immer'
import * as E from 'fp-ts/lib/Either.js'
import type { HostInfo } from '../../../src/ports/host.js'
import {
  decideBeginFailover,
  decideDeletePlan,
  decideEndFailover,
  decideRecordBackup,
  decideSavePlan,
  decodeHeader,
  emptyVmState,
  encodeHeader,
  isProtected,
  placeVms,
  reduceVmState,
  validatePlan,
  type BackupMetadata,
  type DrPlan,
  type VmJournalEvent,
  type VmState,
} from '../../../src/modules/vm/index.js'

const host = (name: string, cpus: number, memoryMb: number, online = true): HostInfo => ({ name, online, cpus, memoryMb, allocatedCpus: 0, allocatedMemoryMb: 0, tags: [] })
const plan = (overrides: Partial<DrPlan> = {}): DrPlan => ({
  id: 'p1',
  source: 'east',
  destination: 'west',
  protect: { tags: ['app'] },
  backupEveryMs: 3600_000,
  replicateEveryMs: 4 * 3600_000,
  placement: { rule: 'capacity', hosts: ['hv-s1', 'hv-s2'] },
  retain: 3,
  quiesceTimeoutMs: 30_000,
  requireAppConsistent: false,
  maxParallel: 8,
  locations: null,
  pathMap: null,
  ...overrides,
})
const need = (vmId: string, memoryMb = 1024, tags: string[] = ['app'], paths: string[] = [`/vms/${vmId}/disk0`]) => ({ vmId, cpus: 1, memoryMb, tags, paths })
const WEST = 'west'
const fold = (events: readonly VmJournalEvent[], state: VmState = emptyVmState): VmState => events.reduce((s, e) => produce(s, (draft) => reduceVmState(draft, e)), state)
const right = <A>(either: E.Either<unknown, A>): A => {
  if (E.isLeft(either)) throw either.left
  return either.right
}

describe('vm placement (pure)', () => {
  it('behaviour 18: an unavailable listed host is skipped and reported', () => {
    const result = placeVms(plan().placement, WEST, [need('vm1')], [host('hv-s1', 8, 8192, false), host('hv-s2', 8, 8192)], new Set())
    expect(result.placed).toEqual([{ vmId: 'vm1', host: 'hv-s2', skipped: ['hv-s1'] }])
  })

  it('behaviour 19: when no listed host is available the VM is unplaced and the others are still placed', () => {
    const result = placeVms({ rule: 'explicit', hosts: { vm1: 'hv-s1', vm2: 'hv-s2' } }, WEST, [need('vm1'), need('vm2')], [host('hv-s1', 8, 8192), host('hv-s2', 8, 8192, false)], new Set())
    expect(result.placed.map((p) => p.vmId)).toEqual(['vm1'])
    expect(result.unplaced.map((u) => u.vmId)).toEqual(['vm2'])
  })

  it('behaviour 21: a failed original host is never chosen, even when the plan lists it', () => {
    const hosts = [host('hv-p1', 64, 262144), host('hv-s1', 2, 2048)]
    const result = placeVms({ rule: 'capacity', hosts: ['west/hv-p1', 'hv-s1'] }, WEST, [need('vm1')], hosts, new Set(['west/hv-p1']))
    expect(result.placed).toEqual([{ vmId: 'vm1', host: 'hv-s1', skipped: ['west/hv-p1'] }])
  })

  it('compares host names with their site: a destination host named like a failed source host is a candidate', () => {
    const hosts = [host('hv-p1', 64, 262144), host('hv-s1', 2, 2048)]
    const result = placeVms({ rule: 'capacity', hosts: ['hv-p1', 'hv-s1', 'east/hv-p1'] }, WEST, [need('vm1')], hosts, new Set(['east/hv-p1']))
    expect(result.placed).toEqual([{ vmId: 'vm1', host: 'hv-p1', skipped: ['east/hv-p1'] }])
  })

  it('keeps a VM registered on a host already (pinned) there, without counting its memory twice', () => {
    const hosts = [{ ...host('hv-s1', 8, 8192), allocatedMemoryMb: 4096 }, host('hv-s2', 8, 8000)]
    const result = placeVms({ rule: 'capacity', hosts: ['hv-s1', 'hv-s2'] }, WEST, [need('vm1', 4096), need('vm2', 4096)], hosts, new Set(), new Map([['vm1', 'hv-s1']]))
    expect(result.placed).toEqual([
      { vmId: 'vm1', host: 'hv-s1', skipped: [] },
      { vmId: 'vm2', host: 'hv-s2', skipped: [] },
    ])
  })

  it('capacity: the host with the most free memory wins, capacity is consumed, anti-affine VMs are split', () => {
    const p = plan({ placement: { rule: 'capacity', hosts: ['a', 'b'], antiAffinity: [['db1', 'db2']] } }).placement
    const result = placeVms(p, WEST, [need('db1', 1000), need('db2', 1000), need('web', 7000)], [host('a', 8, 8000), host('b', 8, 4000)], new Set())
    expect(result.placed.map((x) => [x.vmId, x.host])).toEqual([['db1', 'a'], ['db2', 'b'], ['web', 'a']])
    const full = placeVms(p, WEST, [need('big', 9000)], [host('a', 8, 8000), host('b', 8, 4000)], new Set())
    expect(full.unplaced[0]?.reason).toContain('lacks the CPU or memory')
  })

  it('explicit: a VM id or a tag names the host; a VM named by neither cannot be placed', () => {
    const p = plan({ placement: { rule: 'explicit', hosts: { vm1: 'a', 'tag:db': 'b' } } }).placement
    const result = placeVms(p, WEST, [need('vm1'), need('vm2', 1, ['db']), need('vm3', 1, ['web'])], [host('a', 8, 8000), host('b', 8, 8000)], new Set())
    expect(result.placed.map((x) => [x.vmId, x.host])).toEqual([['vm1', 'a'], ['vm2', 'b']])
    expect(result.unplaced).toEqual([{ vmId: 'vm3', reason: 'the plan names no alternate host for this VM' }])
  })

  it('behaviour 30: a plan with both sites at one location is accepted with a same-location warning', () => {
    const report = validatePlan(plan({ locations: { source: 'dc1', destination: 'dc1' } }), [need('vm1')], { west: [host('hv-s1', 8, 8192)] }, new Set())
    expect(report.warnings.map((w) => w.code)).toEqual(['same-location'])
    expect(report.placed).toHaveLength(1)
  })

  it('warns when replication is more frequent than backup, when no VM matched, and when anti-affinity names a VM it does not protect', () => {
    const report = validatePlan(plan({ replicateEveryMs: 60_000, placement: { rule: 'capacity', hosts: ['hv-s1'], antiAffinity: [['db1', 'ghost']] } }), [], {}, new Set())
    expect(report.warnings.map((w) => w.code)).toEqual(['replication-more-frequent-than-backup', 'no-vm-matched', 'anti-affinity-unknown-vm'])
    expect(report.warnings[2]?.message).toContain('db1, ghost')
  })

  it('reports before any disaster a VM whose disk path the path map does not translate, and places the others', () => {
    const report = validatePlan(plan({ pathMap: { '/vms/vm1/': '/mnt/dr/vm1/' } }), [need('vm1'), need('vm2')], { west: [host('hv-s1', 8, 8192)] }, new Set())
    expect(report.placed.map((p) => p.vmId)).toEqual(['vm1'])
    expect(report.unplaced).toEqual([{ vmId: 'vm2', reason: 'unmapped reference: disk path "/vms/vm2/disk0" has no entry in the plan\'s path map' }])
  })

  it('validates the placement on every replica site too', () => {
    const p = plan({ tertiary: [{ site: 'south', placement: { rule: 'explicit', hosts: { vm1: 'hv-t1' } } }] })
    const report = validatePlan(p, [need('vm1'), need('vm2', 1024, ['web'])], { west: [host('hv-s1', 8, 8192)], south: [host('hv-t1', 8, 8192)] }, new Set())
    expect(report.tertiary).toEqual([{ site: 'south', placed: [{ vmId: 'vm1', host: 'hv-t1', skipped: [] }], unplaced: [{ vmId: 'vm2', reason: 'the plan names no alternate host for this VM' }] }])
  })

  it('protects VMs by id, tag or host', () => {
    const p = plan({ protect: { vms: ['x'], tags: ['t'], hosts: ['h'] } })
    expect(isProtected(p, { id: 'x', tags: [], host: 'o' })).toBe(true)
    expect(isProtected(p, { id: 'y', tags: ['t'], host: 'o' })).toBe(true)
    expect(isProtected(p, { id: 'y', tags: [], host: 'h' })).toBe(true)
    expect(isProtected(p, { id: 'y', tags: ['u'], host: 'o' })).toBe(false)
  })
})

describe('vm decisions and state (pure)', () => {
  it('behaviour 33: a second failover of a plan is refused while one runs; the same run id is a resume', () => {
    const state = fold(right(decideSavePlan(emptyVmState, plan())))
    const input = (runId: string) => ({ planId: 'p1', runId, by: 'administrator' as const, test: false, network: null, failedHosts: null, site: 'west' })
    const running = fold(right(decideBeginFailover(state, 'p1', 'r1', 'administrator', input('r1'))), state)
    expect(running.failovers['p1']?.input).toEqual(input('r1'))
    expect(E.isLeft(decideBeginFailover(running, 'p1', 'r2', 'dr-services', input('r2')))).toBe(true)
    expect(right(decideBeginFailover(running, 'p1', 'r1', 'administrator', input('r1')))).toEqual([])
    expect(E.isLeft(decideSavePlan(running, plan({ retain: 2 })))).toBe(true)
    expect(E.isLeft(decideDeletePlan(running, 'p1'))).toBe(true)
    const ended = fold(right(decideEndFailover(running, 'p1', 'r1', 'succeeded')), running)
    expect(ended.failovers['p1']).toEqual({ runId: 'r1', by: 'administrator', running: false, outcome: 'succeeded' })
    expect(right(decideBeginFailover(ended, 'p1', 'r2', 'administrator', input('r2')))).toHaveLength(1)
  })

  it('ending a failover records where it restored each VM in the same journal append, once', () => {
    const state = fold(right(decideSavePlan(emptyVmState, plan())))
    const running = fold(right(decideBeginFailover(state, 'p1', 'r1', 'administrator', { planId: 'p1', runId: 'r1', by: 'administrator', test: false, network: null, failedHosts: null })), state)
    const placed = { site: 'west', host: 'hv-s1', backupId: 'vm1-east-1', runId: 'r1', originalHost: 'hv-p1' }
    const events = right(decideEndFailover(running, 'p1', 'r1', 'succeeded', [{ vmId: 'vm1', placed }]))
    expect(events.map((e) => e.type)).toEqual(['vm.vmPlaced', 'vm.failoverEnded'])
    const ended = fold(events, running)
    expect(ended.placed['vm1']).toEqual(placed)
    expect(right(decideEndFailover(ended, 'p1', 'r1', 'succeeded', [{ vmId: 'vm1', placed }]))).toEqual([])
  })

  it('records a backup once and replaces the backup a reused slot held', () => {
    const b = (backupId: string, seq: number, slot: number) => ({ backupId, seq, site: 'east', slot, takenAt: seq, hostName: 'hv-p1', consistency: 'application-consistent' as const, snapshot: `drvm-${backupId}` })
    let state = fold(right(decideRecordBackup(emptyVmState, 'vm1', b('a', 1, 1))))
    expect(right(decideRecordBackup(state, 'vm1', b('a', 1, 1)))).toEqual([])
    state = fold(right(decideRecordBackup(state, 'vm1', b('b', 2, 2))), state)
    state = fold(right(decideRecordBackup(state, 'vm1', b('c', 4, 1))), state)
    expect(state.backups['vm1']?.map((x) => x.backupId)).toEqual(['b', 'c'])
  })

  it('unknown plans are refused', () => {
    expect(E.isLeft(decideBeginFailover(emptyVmState, 'nope', 'r', 'administrator', { planId: 'nope', runId: 'r', by: 'administrator', test: false, network: null, failedHosts: null }))).toBe(true)
    expect(E.isLeft(decideDeletePlan(emptyVmState, 'nope'))).toBe(true)
  })
})

describe('vm backup metadata layout (pure)', () => {
  const metadata: BackupMetadata = {
    backupId: 'vm1-east-1', seq: 1, vmId: 'vm1', name: 'VM', hostName: 'hv-p1', takenAt: 5, consistency: 'crash-consistent', trigger: 'schedule',
    cpus: 1, memoryMb: 512, networks: ['n'], tags: [], config: { a: [1, 2] }, disks: [{ volume: 'd', mountPath: '/d', sizeBytes: 4096, offset: 65536 }],
  }

  it('round-trips and rejects a damaged, empty or truncated header', () => {
    const bytes = encodeHeader(metadata)
    expect(decodeHeader(bytes)).toEqual(metadata)
    const damaged = bytes.slice()
    damaged[20] = (damaged[20] ?? 0) ^ 0xff
    expect(decodeHeader(damaged)).toBeUndefined()
    expect(decodeHeader(new Uint8Array(65536))).toBeUndefined()
    expect(decodeHeader(bytes.subarray(0, 4))).toBeUndefined()
  })
})

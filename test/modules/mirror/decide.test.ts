import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { produce } from 'immer'
import * as E from 'fp-ts/lib/Either.js'
import {
  decideBeginOperation,
  decideCreate,
  decideDeleted,
  decideFailedOver,
  decideOperationFailed,
  decideResynced,
  decideReversed,
  decideStart,
  decideStop,
  decideTransferChanged,
} from '../../../src/modules/mirror/decide.js'
import { emptyMirrorState, reduceMirrorState, type MirrorJournalEvent, type MirrorOperation, type MirrorState, type Relationship, type Side } from '../../../src/modules/mirror/state.js'

const relationship: Relationship = {
  id: 'm',
  a: { site: 'east', volume: 'db' },
  b: { site: 'west', volume: 'db' },
  primary: 'a',
  state: 'stopped',
  epoch: 1,
  cut: { everyMs: 1000, highWaterMarkBytes: 1 << 20, probeMs: 100 },
  playback: { everyMs: null, highWaterMarkBytes: null },
  transfer: { chunkBytes: 1 << 20, retries: 5, stagingMaxBytes: null },
  restartPoint: null,
  operation: null,
  createdAt: 0,
  updatedAt: 0,
}

const kinds = ['failover', 'resync', 'failback', 'swap', 'delete'] as const

/** One command a coordinator may decide, with the random parts it needs. */
const command = fc.oneof(
  fc.constant({ t: 'create' as const }),
  fc.constant({ t: 'start' as const }),
  fc.constant({ t: 'stop' as const }),
  fc.record({ t: fc.constant('begin' as const), kind: fc.constantFrom(...kinds), workflow: fc.constantFrom('w1', 'w2') }),
  fc.record({ t: fc.constant('failed' as const), epochBump: fc.integer({ min: -1, max: 2 }), resume: fc.boolean() }),
  fc.record({ t: fc.constant('failedOver' as const), epochBump: fc.integer({ min: -1, max: 2 }), primary: fc.constantFrom<Side>('a', 'b') }),
  fc.constant({ t: 'resynced' as const }),
  fc.record({ t: fc.constant('reversed' as const), epochBump: fc.integer({ min: -1, max: 2 }), primary: fc.constantFrom<Side>('a', 'b') }),
  fc.constant({ t: 'deleted' as const }),
  fc.record({ t: fc.constant('bandwidth' as const), bandwidth: fc.option(fc.integer({ min: 1, max: 1 << 30 }), { nil: undefined }) }),
)

type Command = typeof command extends fc.Arbitrary<infer C> ? C : never

function decide(state: MirrorState, c: Command, at: number) {
  const rel = state.relationships['m']
  const epoch = (bump: number): number => (rel?.epoch ?? 1) + bump
  switch (c.t) {
    case 'create':
      return decideCreate(state, { ...relationship, createdAt: at, updatedAt: at })
    case 'start':
      return decideStart(state, 'm', at)
    case 'stop':
      return decideStop(state, 'm', at)
    case 'begin':
      return decideBeginOperation(state, 'm', c.kind, c.workflow, at)
    case 'failed':
      return decideOperationFailed(state, 'm', epoch(c.epochBump), c.resume ? { toEpoch: epoch(c.epochBump), finalDeltaSet: null } : null, at)
    case 'failedOver':
      return decideFailedOver(state, 'm', epoch(c.epochBump), c.primary, { side: c.primary, snapshot: 'rp', lastApplied: 1, epoch: epoch(c.epochBump), mode: 'default' }, at)
    case 'resynced':
      return decideResynced(state, 'm', at)
    case 'reversed':
      return decideReversed(state, 'm', epoch(c.epochBump), c.primary, at)
    case 'deleted':
      return decideDeleted(state, 'm', at)
    case 'bandwidth': {
      const { bandwidthBytesPerSecond: _gone, ...transfer } = rel?.transfer ?? relationship.transfer
      return decideTransferChanged(state, 'm', c.bandwidth === undefined ? transfer : { ...transfer, bandwidthBytesPerSecond: c.bandwidth }, at)
    }
  }
}

const TRANSITIONAL: Record<MirrorOperation['kind'], string> = { failover: 'failingOver', resync: 'resyncing', failback: 'reversing', swap: 'reversing', delete: 'deleting' }

describe('mirror decisions (property)', () => {
  it('over any sequence of commands: one operation at a time, the epoch never decreases, and a relationship is in an operation\'s state exactly while it runs one', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 60 }), (commands) => {
        let state = emptyMirrorState
        for (const [at, c] of commands.entries()) {
          const before = state.relationships['m']
          const decided = decide(state, c, at)
          if (E.isLeft(decided)) {
            expect(decided.left.code).toMatch(/^E_(NOT_FOUND|CONFLICT|PRECONDITION|INVALID_INPUT|FENCED)$/)
            continue
          }
          if (c.t === 'begin' && before?.operation != null && decided.right.length > 0) {
            // The only begin accepted while an operation is recorded is the same operation re-issued to finish it.
            expect(before.operation).toMatchObject({ kind: c.kind, workflowId: '' })
            expect(before.operation.resume).not.toBeNull()
          }
          state = produce(state, (draft) => {
            for (const event of decided.right as readonly MirrorJournalEvent[]) reduceMirrorState(draft, event)
          })
          const after = state.relationships['m']
          if (before !== undefined && after !== undefined) expect(after.epoch).toBeGreaterThanOrEqual(before.epoch)
          if (after !== undefined) {
            if (after.operation === null) expect(['stopped', 'replicating', 'failedOver']).toContain(after.state)
            else expect(after.state).toBe(TRANSITIONAL[after.operation.kind])
          }
        }
      }),
      { numRuns: 400 },
    )
  })

  it('a begin is refused while another operation runs, and accepted again once it failed before its point of no return', () => {
    let state = emptyMirrorState
    const apply = (events: readonly MirrorJournalEvent[]): void => {
      state = produce(state, (draft) => {
        for (const event of events) reduceMirrorState(draft, event)
      })
    }
    const ok = (decided: ReturnType<typeof decideStart>): readonly MirrorJournalEvent[] => {
      if (E.isLeft(decided)) throw decided.left
      return decided.right
    }
    apply(ok(decideCreate(state, relationship)))
    apply(ok(decideStart(state, 'm', 1)))
    apply(ok(decideBeginOperation(state, 'm', 'failover', 'w1', 2)))
    expect(E.isLeft(decideBeginOperation(state, 'm', 'swap', 'w2', 3))).toBe(true)
    expect(E.isLeft(decideBeginOperation(state, 'm', 'failover', 'w2', 3))).toBe(true)
    apply(ok(decideOperationFailed(state, 'm', 1, null, 4)))
    expect(state.relationships['m']).toMatchObject({ state: 'replicating', operation: null, epoch: 1 })
    apply(ok(decideBeginOperation(state, 'm', 'swap', 'w2', 5)))
    apply(ok(decideOperationFailed(state, 'm', 2, { toEpoch: 2, finalDeltaSet: 7 }, 6)))
    expect(state.relationships['m']).toMatchObject({ state: 'reversing', epoch: 2, operation: { kind: 'swap', workflowId: '', resume: { toEpoch: 2, finalDeltaSet: 7 } } })
    expect(E.isLeft(decideBeginOperation(state, 'm', 'failover', 'w3', 7)), 'another kind cannot start past a point of no return').toBe(true)
    apply(ok(decideBeginOperation(state, 'm', 'swap', 'w3', 8)))
    apply(ok(decideReversed(state, 'm', 2, 'b', 9)))
    expect(state.relationships['m']).toMatchObject({ state: 'replicating', primary: 'b', epoch: 2, operation: null })
  })
})

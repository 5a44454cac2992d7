import { afterEach, describe, expect, it } from 'vitest'
import { EventBus, InjectedCrash, WorkflowEngine, systemClock } from '../../../src/kernel/index.js'
import { memoryHost, type MemoryHost } from '../../../src/adapters/memory/host.js'
import { openServerGroupsModule, type ServerGroupEvents } from '../../../src/modules/server-groups/index.js'
import { mutatingCalls } from '../../fixtures/groups-crash.js'
import { groupInvariants } from '../../fixtures/groups-invariants.js'
import { serverWorld } from '../../fixtures/groups-server.js'
import { Gate, groupSites, token, type GroupsWorld } from '../../fixtures/groups-world.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

/** A world whose west host holds the first mount until the gate opens: a move to west is held after unloading east. */
async function gatedWorld(): Promise<{ w: GroupsWorld; gate: Gate<MemoryHost> }> {
  const gate = new Gate(memoryHost())
  const { w } = await serverWorld({ hosts: { east: memoryHost(), west: gate.port } })
  worlds.push(w)
  gate.arm((method) => method === 'mount')
  return { w, gate }
}

const refusedFor = (kind: string) => ({ code: 'E_CONFLICT', message: expect.stringContaining(`is running ${kind}`), details: { name: 'vs1', running: kind, workflowId: expect.stringMatching(`^serverGroup.${kind}:vs1:`) } })

describe('server groups: one operation at a time, decided on the journal', () => {
  it('while a move runs, every other operation on the group is refused with E_CONFLICT naming it, and changes nothing', async () => {
    const { w, gate } = await gatedWorld()
    const moving = w.serverGroups.move({ name: 'vs1', site: 'west' })
    await gate.reached
    const held = await w.serverGroups.get({ name: 'vs1' })
    expect(held.operation).toMatchObject({ kind: 'move' })
    const calls = mutatingCalls(w)
    const others: Array<() => Promise<unknown>> = [
      () => w.serverGroups.move({ name: 'vs1', site: 'west' }),
      () => w.serverGroups.unload({ name: 'vs1' }),
      () => w.serverGroups.changeConfiguration({ name: 'vs1', config: { shares: [] } }),
      () => w.serverGroups.failover({ name: 'vs1' }),
      () => w.serverGroups.resync({ name: 'vs1' }),
      () => w.serverGroups.snapshot({ name: 'vs1' }),
      () => w.serverGroups.delete({ name: 'vs1' }),
    ]
    for (const call of others) await expect(call()).rejects.toMatchObject(refusedFor('move'))
    // A load is refused too: the group is loaded (behaviour 38) — and another operation runs.
    await expect(w.serverGroups.load({ name: 'vs1', site: 'west' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect(await w.serverGroups.get({ name: 'vs1' })).toEqual(held)
    expect(mutatingCalls(w)).toEqual(calls)
    expect(w.seen.filter((e) => e.name === 'serverGroup.checked')).toEqual([])
    gate.open()
    await moving
    await groupInvariants(w, 'vs1', 'west')
  })

  it('a second coordinator whose view of the journal predates the move is refused by the decision, not by the race of two appends', async () => {
    const { w, gate } = await gatedWorld()
    const second = await openServerGroupsModule({
      stateStore: w.stateStore,
      workflows: new WorkflowEngine({ stateStore: w.stateStore, clock: systemClock }),
      evMirrors: w.evMirrors,
      volumes: w.volumes,
      sites: groupSites(w.portFaults),
      events: new EventBus<ServerGroupEvents>(),
      clock: systemClock,
      token: () => token,
    })
    const moving = w.serverGroups.move({ name: 'vs1', site: 'west' })
    await gate.reached
    // The second coordinator still sees no operation: its refusal is decided once its append has caught up.
    expect((await second.facade.get({ name: 'vs1' })).operation).toBeNull()
    await expect(second.facade.changeConfiguration({ name: 'vs1', config: { shares: [] } })).rejects.toMatchObject(refusedFor('move'))
    gate.open()
    await moving
    await second.close()
    expect((await w.serverGroups.get({ name: 'vs1' })).config).toEqual({ shares: ['home'], exports: ['/fs1'] })
  })

  it('an interrupted move is resumed only by the same call: another operation, or a move elsewhere, is refused until it is finished', async () => {
    const { w: first } = await serverWorld({ crashAt: (point) => point.workflowId.startsWith('serverGroup.move:') && point.step === 'mount' && point.phase === 'before' })
    worlds.push(first)
    await expect(first.serverGroups.move({ name: 'vs1', site: 'west' })).rejects.toBeInstanceOf(InjectedCrash)
    const w = await first.restart()
    worlds.push(w)
    // What the crash left: unloaded at east, not yet loaded at west, still recorded on east with the move under way.
    expect(await w.serverGroups.get({ name: 'vs1' })).toMatchObject({ loadedOn: 'east', operation: { kind: 'move' } })
    expect(await w.hosts.east.listMounts()).toEqual([])
    expect(await w.hosts.west.listMounts()).toEqual([])
    for (const call of [() => w.serverGroups.move({ name: 'vs1', site: 'east' }), () => w.serverGroups.unload({ name: 'vs1' }), () => w.serverGroups.changeConfiguration({ name: 'vs1', config: null })]) {
      await expect(call()).rejects.toMatchObject(refusedFor('move'))
    }
    expect(await w.serverGroups.move({ name: 'vs1', site: 'west' })).toEqual({ warnings: [] })
    await groupInvariants(w, 'vs1', 'west')
  })
})

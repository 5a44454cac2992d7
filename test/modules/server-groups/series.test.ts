import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock, type FenceToken } from '../../../src/kernel/index.js'
import { MemoryHost } from '../../../src/adapters/memory/host.js'
import type { VolumeFacade } from '../../../src/modules/volume/index.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { Gate, eventsSeen, groupsWorld, type GroupsWorld } from '../../fixtures/groups-world.js'
import { serverWorld } from '../../fixtures/groups-server.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

const encode = (n: number) => new TextEncoder().encode(JSON.stringify({ balance: n }))
const decodeBalance = (bytes: Uint8Array) => (JSON.parse(new TextDecoder().decode(bytes)) as { balance: number }).balance

/**
 * A bank moving money between an account on fs1 and one on fs2, one transaction at a time: the debit is written,
 * then the credit. With `pauseNext`, the next transaction stops between the two until `resume()`.
 */
class Bank {
  running = true
  stopping = false
  transactions = 0
  midTransaction = false
  #inFlight: Promise<void> = Promise.resolve()
  #pause: { reached: () => void; released: Promise<void> } | null = null
  #release = (): void => undefined

  constructor(readonly volumes: VolumeFacade) {}

  async balance(fs: string, snapshot?: number): Promise<number> {
    const ref = { site: 'east', volume: fs, path: '/acct' }
    return decodeBalance(snapshot === undefined ? await this.volumes.getObject(ref) : await this.volumes.readSnapshotObject({ ...ref, snapshot }))
  }

  async open(): Promise<void> {
    await this.volumes.putObject({ site: 'east', volume: 'fs1', path: '/acct', data: encode(100) })
    await this.volumes.putObject({ site: 'east', volume: 'fs2', path: '/acct', data: encode(100) })
  }

  /** Makes the next transaction stop after its debit; resolves once it has. */
  pauseNext(): Promise<void> {
    return new Promise((reached) => {
      this.#pause = { reached, released: new Promise((resolve) => (this.#release = resolve)) }
    })
  }

  /** Lets a paused transaction write its credit. */
  resume(): void {
    this.#release()
  }

  /** Runs transactions until stopped; a transaction starts only while the bank's actor is not being frozen. */
  async run(): Promise<void> {
    while (this.running) {
      if (this.stopping) {
        await new Promise((r) => setTimeout(r, 1))
        continue
      }
      this.#inFlight = this.#transfer(1 + (this.transactions % 7))
      await this.#inFlight
    }
  }

  /** What the host waits for before it reports the actor frozen: the transaction under way. */
  idle(): Promise<void> {
    return this.#inFlight
  }

  async #transfer(amount: number): Promise<void> {
    const from = await this.balance('fs1')
    const to = await this.balance('fs2')
    await this.volumes.putObject({ site: 'east', volume: 'fs1', path: '/acct', data: encode(from - amount) })
    this.midTransaction = true
    const pause = this.#pause
    if (pause !== null) {
      this.#pause = null
      pause.reached()
      await pause.released
    }
    await this.volumes.putObject({ site: 'east', volume: 'fs2', path: '/acct', data: encode(to + amount) })
    this.midTransaction = false
    this.transactions += 1
  }
}

/** A host whose I/O actors stop at a transaction boundary, as an application honouring a freeze does. */
class BankHost extends MemoryHost {
  bank: Bank | null = null
  /** Whether a transaction was half done when each freeze was asked for. */
  readonly frozenMidTransaction: boolean[] = []

  override async freezeActor(actorId: string, token: FenceToken): Promise<void> {
    if (this.bank !== null) {
      this.frozenMidTransaction.push(this.bank.midTransaction)
      this.bank.stopping = true
      this.bank.resume()
      await this.bank.idle()
    }
    await super.freezeActor(actorId, token)
  }

  override async thawActor(actorId: string, token: FenceToken): Promise<void> {
    await super.thawActor(actorId, token)
    if (this.bank !== null) this.bank.stopping = false
  }
}

describe('server groups: DR snapshot series', () => {
  it('behaviour 53: a group-consistent DR snapshot asked for in the middle of a cross-volume transaction holds both halves of it', async () => {
    const east = new BankHost()
    const { w } = await serverWorld({ hosts: { east, west: new MemoryHost() } })
    worlds.push(w)
    const bank = new Bank(w.volumes)
    await bank.open()
    east.addActor({ id: 'bank', kind: 'process', volumes: ['fs1', 'fs2'] })
    east.bank = bank
    const halfway = bank.pauseNext()
    const running = bank.run()
    await halfway
    // The debit is written and the credit is not: a snapshot taken now without the freeze would hold 199 or so.
    expect(bank.midTransaction).toBe(true)
    const taken = await w.serverGroups.snapshot({ name: 'vs1' })
    bank.running = false
    await running
    expect(east.frozenMidTransaction).toEqual([true])
    let sum = 0
    for (const fs of ['fs1', 'fs2']) {
      const entry = (await w.volumes.listSnapshots({ site: 'west', volume: fs })).find((s) => s.name === taken.name)
      if (entry === undefined) throw new Error(`${fs} has no "${taken.name}" at west`)
      sum += decodeBalance(await w.volumes.readSnapshotObject({ site: 'west', volume: fs, snapshot: entry.id, path: '/acct' }))
    }
    expect(sum).toBe(200)
    expect(bank.transactions).toBeGreaterThan(0)
    expect((await east.listActors('fs1'))[0]?.frozen).toBe(false)
  })

  it('behaviour 52: on an hourly cadence the DR site gets a group snapshot every hour, each stamped with its transfer, and a transfer under way is not stopped for it', async () => {
    const clock = new ManualClock()
    const gate = new Gate(memoryStorage())
    const { w } = await serverWorld({ groupClock: clock, bases: { east: memoryStorage(), west: gate.port } })
    worlds.push(w)
    await w.serverGroups.schedule({ name: 'vs1', every: '1h' })
    for (let hour = 1; hour <= 2; hour++) {
      await w.volumes.putObject({ site: 'east', volume: 'fs1', path: `/h${hour}`, data: new Uint8Array([hour]) })
      await w.evMirrors.transfer({ id: 'fs1' })
      const taken = eventsSeen(w, 'serverGroup.seriesSnapshotTaken', hour)
      await clock.advance(60 * 60_000)
      await taken
    }
    // Hour 3: a transfer of fs1 is under way (one member write held) when the series snapshot is due.
    await w.volumes.putObject({ site: 'east', volume: 'fs1', path: '/h3', data: new Uint8Array(5000).fill(3) })
    gate.arm((method, args) => method === 'write' && String(args[0]).startsWith('fs1.'))
    const playback = w.evMirrors.transfer({ id: 'fs1' })
    await gate.reached
    const fs2Sent = eventsSeen(w, 'evMirror.redirectMoved', 1, (p) => p['id'] === 'fs2' && p['to'] === 'vs1.dr.3')
    const third = eventsSeen(w, 'serverGroup.seriesSnapshotTaken', 3)
    await clock.advance(60 * 60_000)
    await fs2Sent
    // The series snapshot is taken on both members and sent for fs2; for fs1 it waits: nothing of it is recorded yet.
    expect((await w.serverGroups.get({ name: 'vs1' })).series.taken).toHaveLength(2)
    gate.open()
    const inFlight = await playback
    // The transfer under way finished while the series snapshot was still pending.
    expect((await w.serverGroups.get({ name: 'vs1' })).series.taken).toHaveLength(2)
    expect((await w.serverGroups.get({ name: 'vs1' })).operation?.kind).toBe('snapshot')
    await third
    const taken = (await w.serverGroups.get({ name: 'vs1' })).series.taken
    expect(taken.map((s) => [s.name, s.reason])).toEqual([['vs1.dr.1', 'schedule'], ['vs1.dr.2', 'schedule'], ['vs1.dr.3', 'schedule']])
    const fs1 = await w.evMirrors.get({ id: 'fs1' })
    expect(fs1.lastTransferred?.name).toBe('vs1.dr.3')
    expect(taken[2]?.members.find((m) => m.id === 'fs1')?.sequence).toBe(fs1.lastTransferred?.sequence)
    expect(taken[2]?.members.find((m) => m.id === 'fs1')?.sequence).toBe((w.seen.find((e) => e.name === 'evMirror.transferStarted' && (e.payload as { snapshot: string }).snapshot === inFlight.snapshot)?.payload as { sequence: number }).sequence + 1)
    for (const s of taken) expect((await w.volumes.listSnapshots({ site: 'west', volume: 'fs2' })).map((x) => x.name)).toContain(s.name)
    await w.serverGroups.schedule({ name: 'vs1', every: null })
    await clock.advance(60 * 60_000)
    expect((await w.serverGroups.get({ name: 'vs1' })).series.taken).toHaveLength(3)
  })

  it('the group definition travels with each series snapshot: the DR site reads it from its own storage, without the coordinator\'s journal', async () => {
    const { w, group } = await serverWorld()
    worlds.push(w)
    const taken = await w.serverGroups.snapshot({ name: 'vs1' })
    await w.serverGroups.changeConfiguration({ name: 'vs1', config: { shares: ['home', 'later'] } })
    // A coordinator with an empty journal, over the same storage and network.
    const fresh = await groupsWorld({ bases: w.bases, fabric: w.fabric })
    worlds.push(fresh)
    expect(await fresh.serverGroups.list()).toEqual([])
    const definition = await fresh.serverGroups.replicatedDefinition({ site: 'west', volume: 'fs2', snapshot: taken.name })
    expect(definition).toEqual({
      name: 'vs1',
      sites: ['east', 'west'],
      members: ['fs1', 'fs2'],
      interfaces: group.interfaces,
      nameRecords: group.nameRecords,
      mounts: group.mounts,
      config: { shares: ['home'], exports: ['/fs1'] },
    })
    await expect(fresh.serverGroups.replicatedDefinition({ site: 'west', volume: 'fs2', snapshot: 'nope' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    const plain = (await w.evMirrors.get({ id: 'fs1' })).lastTransferred?.name ?? ''
    await w.evMirrors.transfer({ id: 'fs1' })
    const latest = (await w.evMirrors.get({ id: 'fs1' })).lastTransferred?.name ?? ''
    expect(latest).not.toBe(plain)
    await expect(fresh.serverGroups.replicatedDefinition({ site: 'west', volume: 'fs1', snapshot: latest })).rejects.toMatchObject({ code: 'E_NOT_FOUND', message: expect.stringContaining('carries no server group') })
  })

  it('a series snapshot taken while a member is busy with another transfer waits for it instead of marking it out of sync', async () => {
    const { w } = await serverWorld()
    worlds.push(w)
    await w.volumes.putObject({ site: 'east', volume: 'fs1', path: '/busy', data: new Uint8Array(5000).fill(7) })
    w.faults.west.setLatency((call) => (call.method === 'write' && String(call.args[0]).startsWith('fs1.') ? 20 : 0))
    const running = w.evMirrors.transfer({ id: 'fs1' })
    const taken = await w.serverGroups.snapshot({ name: 'vs1' })
    await running
    expect(taken.members.map((m) => m.id)).toEqual(['fs1', 'fs2'])
    expect((await w.serverGroups.info({ name: 'vs1' })).every((m) => m.repState === 'alive')).toBe(true)
    expect(w.seen.some((e) => e.name === 'serverGroup.memberMarkedOutOfSync')).toBe(false)
  })
})

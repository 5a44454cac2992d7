import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock, type FenceToken } from '../../../src/kernel/index.js'
import { MemoryHost } from '../../../src/adapters/memory/host.js'
import type { VolumeFacade } from '../../../src/modules/volume/index.js'
import { type GroupsWorld } from '../../fixtures/groups-world.js'
import { serverWorld } from '../../fixtures/groups-server.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

const encode = (n: number) => new TextEncoder().encode(JSON.stringify({ balance: n }))
const decodeBalance = (bytes: Uint8Array) => (JSON.parse(new TextDecoder().decode(bytes)) as { balance: number }).balance

/** A bank moving money between an account on fs1 and one on fs2, one transaction at a time. */
class Bank {
  stopping = false
  running = true
  #inFlight: Promise<void> = Promise.resolve()
  transactions = 0

  constructor(readonly volumes: VolumeFacade) {}

  async balance(fs: string, snapshot?: number): Promise<number> {
    const ref = { site: 'east', volume: fs, path: '/acct' }
    return decodeBalance(snapshot === undefined ? await this.volumes.getObject(ref) : await this.volumes.readSnapshotObject({ ...ref, snapshot }))
  }

  async open(): Promise<void> {
    await this.volumes.putObject({ site: 'east', volume: 'fs1', path: '/acct', data: encode(100) })
    await this.volumes.putObject({ site: 'east', volume: 'fs2', path: '/acct', data: encode(100) })
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
    await new Promise((r) => setTimeout(r, 1))
    await this.volumes.putObject({ site: 'east', volume: 'fs2', path: '/acct', data: encode(to + amount) })
    this.transactions += 1
  }
}

/** A host whose I/O actors stop at a transaction boundary, as an application honouring a freeze does. */
class BankHost extends MemoryHost {
  bank: Bank | null = null

  override async freezeActor(actorId: string, token: FenceToken): Promise<void> {
    if (this.bank !== null) {
      this.bank.stopping = true
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
  it('behaviour 53: a group-consistent DR snapshot holds both halves of a cross-volume transaction or neither', async () => {
    const east = new BankHost()
    const { w } = await serverWorld({ hosts: { east, west: new MemoryHost() } })
    worlds.push(w)
    const bank = new Bank(w.volumes)
    await bank.open()
    east.addActor({ id: 'bank', kind: 'process', volumes: ['fs1', 'fs2'] })
    east.bank = bank
    const running = bank.run()
    await new Promise((r) => setTimeout(r, 20))
    const taken = await w.serverGroups.snapshot({ name: 'vs1' })
    await new Promise((r) => setTimeout(r, 10))
    bank.running = false
    await running
    expect(bank.transactions).toBeGreaterThan(0)
    let sum = 0
    for (const fs of ['fs1', 'fs2']) {
      const entry = (await w.volumes.listSnapshots({ site: 'west', volume: fs })).find((s) => s.name === taken.name)
      expect(entry).toBeDefined()
      sum += decodeBalance(await w.volumes.readSnapshotObject({ site: 'west', volume: fs, snapshot: entry?.id ?? 0, path: '/acct' }))
    }
    expect(sum).toBe(200)
    expect((await east.listActors('fs1'))[0]?.frozen).toBe(false)
  })

  it('behaviour 52: with an hourly cadence the DR site gets a group snapshot about every hour while transfers keep flowing, each stamped with its transfer', async () => {
    const clock = new ManualClock()
    const { w } = await serverWorld({ groupClock: clock })
    worlds.push(w)
    await w.serverGroups.schedule({ name: 'vs1', every: '1h' })
    const series = async (n: number) => {
      for (let i = 0; i < 2000 && (await w.serverGroups.get({ name: 'vs1' })).series.taken.length < n; i++) await new Promise((r) => setTimeout(r, 2))
      return (await w.serverGroups.get({ name: 'vs1' })).series.taken
    }
    for (let hour = 1; hour <= 3; hour++) {
      await w.volumes.putObject({ site: 'east', volume: 'fs1', path: `/h${hour}`, data: new Uint8Array([hour]) })
      await w.evMirrors.transfer({ id: 'fs1' })
      await clock.advance(60 * 60_000)
      expect(await series(hour)).toHaveLength(hour)
    }
    const taken = (await w.serverGroups.get({ name: 'vs1' })).series.taken
    expect(taken.map((s) => s.name)).toEqual(['vs1.dr.1', 'vs1.dr.2', 'vs1.dr.3'])
    expect(taken.map((s) => s.reason)).toEqual(['schedule', 'schedule', 'schedule'])
    const fs1 = await w.evMirrors.get({ id: 'fs1' })
    expect(taken[2]?.members.find((m) => m.id === 'fs1')?.sequence).toBe(fs1.lastTransferred?.sequence)
    expect(taken[0]?.members.find((m) => m.id === 'fs1')?.sequence).toBe(3)
    for (const s of taken) expect((await w.volumes.listSnapshots({ site: 'west', volume: 'fs2' })).map((x) => x.name)).toContain(s.name)
    await w.serverGroups.schedule({ name: 'vs1', every: null })
    await clock.advance(60 * 60_000)
    expect((await w.serverGroups.get({ name: 'vs1' })).series.taken).toHaveLength(3)
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
    expect(w.seen.some((e) => e.name === 'serverGroup.memberOutOfSync')).toBe(false)
  })
})

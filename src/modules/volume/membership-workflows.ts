import * as t from 'io-ts'
import { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { JournaledStore } from '../../kernel/store.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { ConstituentIo } from './constituent-io.js'
import {
  decideAbandonChange,
  decideAddConstituents,
  decideBeginDelete,
  decideBeginExpand,
  decideBeginShrink,
  decideEndCreate,
  decideRegister,
  decideRemoveConstituents,
  decideRemoveVolume,
} from './decide.js'
import type { VolumeEvents } from './events.js'
import { constituentName } from './members.js'
import type { ObjectStore } from './objects.js'
import { destroyConstituent, provisionConstituent, type ConstituentSpec } from './provisioning.js'
import { VolumeGeometryCodec, volumeKey, type VolumeMember, type VolumeCatalogState, type VolumeJournalEvent, type VolumeRecord } from './state.js'

/**
 * Workflow types of membership changes.
 *
 * @public
 */
export const MEMBERSHIP_WORKFLOWS = { create: 'volume.create', expand: 'volume.expand', shrink: 'volume.shrink', delete: 'volume.delete' } as const

/**
 * Journaled inputs of the membership workflows.
 *
 * @public
 */
export const MembershipInputs = {
  create: t.type({ site: t.string, volume: t.string, dataConstituents: t.number, geometry: VolumeGeometryCodec, maxFenceHoldMs: t.number }),
  expand: t.type({ site: t.string, volume: t.string, add: t.number }),
  shrink: t.type({ site: t.string, volume: t.string, remove: t.union([t.number, t.array(t.number)]) }),
  delete: t.type({ site: t.string, volume: t.string }),
}

/**
 * What the membership workflows need.
 *
 * @public
 */
export interface MembershipDeps {
  readonly catalog: JournaledStore<VolumeCatalogState, VolumeJournalEvent>
  readonly io: (site: string) => ConstituentIo
  readonly events: EventSink<VolumeEvents>
  readonly clock: Clock
  readonly objects: ObjectStore
}

/**
 * Create, expand, shrink and delete as durable workflows. Each opens a membership change in the catalog first
 * (refused with `E_CONFLICT` while a consistency group is open or another change runs), does its storage work
 * with idempotent steps, and closes the change in one journal event. A failed create or expand deletes only the
 * volumes it created; a failed shrink leaves the objects it already moved where they are (the OLS points at
 * them) and returns the constituents to active.
 *
 * @public
 */
export class MembershipWorkflows {
  readonly #deps: MembershipDeps

  constructor(deps: MembershipDeps) {
    this.#deps = deps
  }

  /** Registers the volume, provisions namespace, OLS and data constituents, and marks it ready. */
  async create(ctx: WorkflowContext, input: t.TypeOf<typeof MembershipInputs.create>): Promise<null> {
    const { catalog, clock } = this.#deps
    const io = this.#deps.io(input.site)
    const specs: ConstituentSpec[] = [
      { volume: constituentName(input.volume, 'namespace', 0), role: 'namespace', ordinal: 0 },
      { volume: constituentName(input.volume, 'ols', 0), role: 'ols', ordinal: 0 },
      ...Array.from({ length: input.dataConstituents }, (_, i): ConstituentSpec => ({ volume: constituentName(input.volume, 'data', i + 1), role: 'data', ordinal: i + 1 })),
    ]
    await ctx.step(
      'register',
      async () => {
        const at = clock.now()
        const record: VolumeRecord = {
          site: input.site,
          name: input.volume,
          status: 'creating',
          createdAt: at,
          geometry: input.geometry,
          maxFenceHoldMs: input.maxFenceHoldMs,
          members: specs.map((s): VolumeMember => ({ ...s, state: 'active', addedAt: at })),
          nextOrdinal: input.dataConstituents + 1,
          group: null,
          change: { id: ctx.workflowId, kind: 'create', ordinals: specs.filter((s) => s.role === 'data').map((s) => s.ordinal), since: at },
          lastGroup: null,
          readRedirect: null,
        }
        await catalog.execute((state) => decideRegister(state, record))
        return null
      },
      {
        compensate: async () => {
          for (const spec of specs) await destroyConstituent(io, spec.volume, ctx.workflowId)
          await catalog.execute((state) => decideEndCreate(state, input.site, input.volume, ctx.workflowId, false))
        },
      },
    )
    await ctx.step('provision', async () => {
      await Promise.all(specs.map((spec) => provisionConstituent(io, input.volume, spec, input.geometry, ctx.workflowId)))
      return null
    })
    await ctx.step('ready', async () => {
      const decided = await catalog.execute((state) => decideEndCreate(state, input.site, input.volume, ctx.workflowId, true))
      if (decided.length > 0) {
        for (const spec of specs) this.#added(input.site, input.volume, spec)
        this.#deps.events.emit('volume.created', 'info', { site: input.site, volume: input.volume, dataConstituents: input.dataConstituents })
      }
      return null
    })
    return null
  }

  /** Reserves ordinals, provisions the new data constituents and adds them as active members. */
  async expand(ctx: WorkflowContext, input: t.TypeOf<typeof MembershipInputs.expand>): Promise<readonly number[]> {
    const { catalog, clock } = this.#deps
    const io = this.#deps.io(input.site)
    const ordinals = await ctx.step(
      'begin',
      async () => {
        await catalog.execute((state) => decideBeginExpand(state, input.site, input.volume, ctx.workflowId, input.add, clock.now()))
        return this.#change(input.site, input.volume, ctx.workflowId)
      },
      {
        compensate: async (reserved) => {
          for (const ordinal of reserved) await destroyConstituent(io, constituentName(input.volume, 'data', ordinal), ctx.workflowId)
          await catalog.execute((state) => decideAbandonChange(state, input.site, input.volume, ctx.workflowId))
        },
      },
    )
    const specs = ordinals.map((ordinal): ConstituentSpec => ({ volume: constituentName(input.volume, 'data', ordinal), role: 'data', ordinal }))
    await ctx.step('provision', async () => {
      const geometry = this.#record(input.site, input.volume).geometry
      await Promise.all(specs.map((spec) => provisionConstituent(io, input.volume, spec, geometry, ctx.workflowId)))
      return null
    })
    await ctx.step('commit', async () => {
      const decided = await catalog.execute((state) => decideAddConstituents(state, input.site, input.volume, ctx.workflowId, clock.now()))
      if (decided.length > 0) {
        for (const spec of specs) this.#added(input.site, input.volume, spec)
        this.#deps.events.emit('volume.expanded', 'info', { site: input.site, volume: input.volume, added: ordinals })
      }
      return null
    })
    return ordinals
  }

  /**
   * Drains the chosen data constituents, evacuates their objects to the remaining ones (OLS updated), removes
   * them from the volume and deletes their storage volumes — except those a catalogued snapshot still
   * references, which stay as `retired` until that snapshot is deleted.
   */
  async shrink(ctx: WorkflowContext, input: t.TypeOf<typeof MembershipInputs.shrink>): Promise<readonly number[]> {
    const { catalog, clock } = this.#deps
    const io = this.#deps.io(input.site)
    const ordinals = await ctx.step(
      'begin',
      async () => {
        await catalog.execute((state) => decideBeginShrink(state, input.site, input.volume, ctx.workflowId, input.remove, clock.now()))
        return this.#change(input.site, input.volume, ctx.workflowId)
      },
      { compensate: async () => void (await catalog.execute((state) => decideAbandonChange(state, input.site, input.volume, ctx.workflowId))) },
    )
    const evacuated = await ctx.step('evacuate', async () => this.#deps.objects.evacuate(input.site, input.volume, ordinals))
    await ctx.step('commit', async () => {
      await catalog.execute((state) => decideRemoveConstituents(state, input.site, input.volume, ctx.workflowId))
      return null
    })
    await ctx.step('reap', async () => {
      const record = this.#record(input.site, input.volume)
      const retired: string[] = []
      for (const ordinal of ordinals) {
        const constituent = constituentName(input.volume, 'data', ordinal)
        if (record.members.some((m) => m.volume === constituent)) retired.push(constituent)
        else await destroyConstituent(io, constituent)
      }
      this.#shrunk(input.site, input.volume, ordinals, retired, evacuated)
      return null
    })
    return ordinals
  }

  /** Deletes every constituent volume and drops the volume from the catalog. Refused while snapshots exist. */
  async delete(ctx: WorkflowContext, input: t.TypeOf<typeof MembershipInputs.delete>): Promise<null> {
    const { catalog, clock } = this.#deps
    const io = this.#deps.io(input.site)
    const members = await ctx.step('begin', async () => {
      await catalog.execute((state) => decideBeginDelete(state, input.site, input.volume, ctx.workflowId, clock.now()))
      return this.#record(input.site, input.volume).members.map((m) => ({ volume: m.volume, role: m.role, ordinal: m.ordinal }))
    })
    await ctx.step('destroy', async () => {
      for (const member of members) await destroyConstituent(io, member.volume)
      return null
    })
    await ctx.step('commit', async () => {
      const decided = await catalog.execute((state) => decideRemoveVolume(state, input.site, input.volume, ctx.workflowId))
      if (decided.length > 0) {
        for (const member of members) {
          this.#deps.events.emit('volume.constituentRemoved', 'info', { site: input.site, volume: input.volume, constituent: member.volume, role: member.role, ordinal: member.ordinal, retired: false })
        }
        this.#deps.events.emit('volume.deleted', 'info', { site: input.site, volume: input.volume })
      }
      return null
    })
    return null
  }

  #shrunk(site: string, volume: string, ordinals: readonly number[], retired: readonly string[], evacuated: number): void {
    for (const ordinal of ordinals) {
      const constituent = constituentName(volume, 'data', ordinal)
      this.#deps.events.emit('volume.constituentRemoved', 'info', { site, volume, constituent, role: 'data', ordinal, retired: retired.includes(constituent) })
    }
    this.#deps.events.emit('volume.shrunk', 'info', { site, volume, removed: ordinals, evacuated })
  }

  #added(site: string, volume: string, spec: ConstituentSpec): void {
    this.#deps.events.emit('volume.constituentAdded', 'info', { site, volume, constituent: spec.volume, role: spec.role, ordinal: spec.ordinal })
  }

  #record(site: string, name: string): VolumeRecord {
    const record = this.#deps.catalog.state.volumes[volumeKey(site, name)]
    if (record === undefined) throw new DrError('E_NOT_FOUND', `expandable volume "${name}" does not exist on site "${site}"`, { site, volume: name })
    return record
  }

  #change(site: string, name: string, id: string): number[] {
    const change = this.#record(site, name).change
    return change?.id === id ? [...change.ordinals] : []
  }
}

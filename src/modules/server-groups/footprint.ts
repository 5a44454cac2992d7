import * as t from 'io-ts'
import { callAdapter } from '../../kernel/errors.js'
import type { GroupContext } from './context.js'

const nullable = <C extends t.Mixed>(codec: C) => t.union([codec, t.null])

/**
 * Where a group's pieces are, item by item: each mount (the site, the path, the group's volume for it and whether
 * that volume is mounted there), each virtual address (the site that holds it, null: none) and each name record
 * (the address it points at, null: no record).
 *
 * @public
 */
export const PlacementCodec = t.type(
  {
    mounts: t.array(t.type({ site: t.string, path: t.string, volume: t.string, mounted: t.boolean })),
    addresses: t.array(t.type({ address: t.string, owner: nullable(t.string) })),
    names: t.array(t.type({ name: t.string, address: nullable(t.string) })),
  },
  'Placement',
)

/**
 * A placement.
 *
 * @public
 */
export type Placement = t.TypeOf<typeof PlacementCodec>

/**
 * What an operation wants to change, before it knows what is there: mounts to have or not have, addresses to
 * claim for a site or to release where a site holds them, name records to point at an address or to delete where
 * they point at one. `registry` is the site whose identity registry is asked and told.
 *
 * @public
 */
export interface PlacementPlan {
  readonly registry: string
  readonly mounts: ReadonlyArray<{ readonly site: string; readonly path: string; readonly volume: string; readonly mounted: boolean }>
  readonly addresses: ReadonlyArray<{ readonly address: string; readonly owner: string } | { readonly address: string; readonly releasedBy: string }>
  readonly names: ReadonlyArray<{ readonly name: string; readonly address: string } | { readonly name: string; readonly deletedIf: string }>
}

/**
 * What a survey found before an operation acted (`before`) and what the operation will make of it (`wanted`),
 * item for item. A group workflow journals it before its first side effect, so that however far the workflow got —
 * even through a step that failed half-way or a reply that was lost — putting `before` back undoes it.
 *
 * @public
 */
export const FootprintCodec = t.type({ registry: t.string, before: PlacementCodec, wanted: PlacementCodec }, 'Footprint')

/**
 * A footprint.
 *
 * @public
 */
export type Footprint = t.TypeOf<typeof FootprintCodec>

/**
 * One kind of side effect, in the order a workflow applies them: dismounts and address releases first, so that a
 * group is never mounted, or its address held, at two sites at once.
 *
 * @public
 */
export type PlacementPart = 'dismount' | 'release' | 'mount' | 'claim' | 'names'

/**
 * The parts in the order they are applied.
 *
 * @public
 */
export const PLACEMENT_PARTS: readonly PlacementPart[] = ['dismount', 'release', 'mount', 'claim', 'names']

/** Reads what is there for every item of `plan` and what the plan makes of it. */
export async function survey(cx: GroupContext, plan: PlacementPlan): Promise<Footprint> {
  const network = cx.deps.sites(plan.registry).network
  const before: Placement = { mounts: [], addresses: [], names: [] }
  const wanted: Placement = { mounts: [], addresses: [], names: [] }
  for (const m of plan.mounts) {
    const host = cx.deps.sites(m.site).host
    const current = await callAdapter(host.kind, 'getMount', () => host.getMount(m.path))
    before.mounts.push({ site: m.site, path: m.path, volume: m.volume, mounted: current?.volume === m.volume })
    wanted.mounts.push({ ...m })
  }
  for (const a of plan.addresses) {
    const owner = (await callAdapter(network.kind, 'addressOwner', () => network.identity.addressOwner(a.address))) ?? null
    before.addresses.push({ address: a.address, owner })
    wanted.addresses.push({ address: a.address, owner: 'owner' in a ? a.owner : owner === a.releasedBy ? null : owner })
  }
  for (const n of plan.names) {
    const address = (await callAdapter(network.kind, 'getNameRecord', () => network.identity.getNameRecord(n.name))) ?? null
    before.names.push({ name: n.name, address })
    wanted.names.push({ name: n.name, address: 'address' in n ? n.address : address === n.deletedIf ? null : address })
  }
  return { registry: plan.registry, before, wanted }
}

/**
 * Makes one part of `placement` true for group `name`, touching only what differs (so a repeat, after a crash or
 * a lost reply, changes nothing more and calls no mutating adapter method).
 */
export async function applyPart(cx: GroupContext, name: string, registry: string, placement: Placement, part: PlacementPart): Promise<void> {
  const network = cx.deps.sites(registry).network
  const identity = network.identity
  if (part === 'dismount' || part === 'mount') {
    for (const m of placement.mounts.filter((x) => x.mounted === (part === 'mount'))) {
      const host = cx.deps.sites(m.site).host
      const current = await callAdapter(host.kind, 'getMount', () => host.getMount(m.path))
      if (part === 'dismount' && current?.volume === m.volume) await callAdapter(host.kind, 'dismount', () => host.dismount(m.path, cx.deps.token()))
      if (part === 'mount' && current?.volume !== m.volume) {
        await callAdapter(host.kind, 'mount', () => host.mount({ path: m.path, volume: m.volume, identity: `${name}:${m.volume}`, options: { group: name }, readOnly: false }, cx.deps.token()))
      }
    }
    return
  }
  if (part === 'release' || part === 'claim') {
    for (const a of placement.addresses.filter((x) => (x.owner === null) === (part === 'release'))) {
      const current = await callAdapter(network.kind, 'addressOwner', () => identity.addressOwner(a.address))
      if (current === (a.owner ?? undefined)) continue
      if (a.owner === null && current !== undefined) await callAdapter(network.kind, 'releaseAddress', () => identity.releaseAddress(a.address, current, cx.deps.token()))
      if (a.owner !== null) {
        const owner = a.owner
        await callAdapter(network.kind, 'claimAddress', () => identity.claimAddress(a.address, owner, cx.deps.token()))
      }
    }
    return
  }
  for (const n of placement.names) {
    const current = await callAdapter(network.kind, 'getNameRecord', () => identity.getNameRecord(n.name))
    if (current === (n.address ?? undefined)) continue
    const address = n.address
    if (address === null) await callAdapter(network.kind, 'deleteNameRecord', () => identity.deleteNameRecord(n.name, cx.deps.token()))
    else await callAdapter(network.kind, 'setNameRecord', () => identity.setNameRecord(n.name, address, cx.deps.token()))
  }
}

/** Makes every part of `placement` true, in order. */
export async function applyPlacement(cx: GroupContext, name: string, registry: string, placement: Placement): Promise<void> {
  for (const part of PLACEMENT_PARTS) await applyPart(cx, name, registry, placement, part)
}

/** Puts back what a survey found: undoes whatever part of the footprint's change was made. */
export function restore(cx: GroupContext, name: string, footprint: Footprint): Promise<void> {
  return applyPlacement(cx, name, footprint.registry, footprint.before)
}

import { callAdapter, isDrError } from '../../kernel/errors.js'
import type { HostPort, IoActor } from '../../ports/host.js'
import type { FreezeContext } from './context.js'
import { decideOwnActors } from './decide.js'
import { retrying } from './retrying.js'
import type { VolumeRuntime } from './volume-runtime.js'

/**
 * Which actors a restore freezes: those the host lists for the protected volume (and for the volume backing it,
 * after a standby swap), plus actors a report named (`extra`).
 *
 * @public
 */
export interface FreezeScope {
  readonly site: string
  readonly key: string
  readonly volumes: readonly string[]
  readonly restoreId: string
  readonly actorTimeoutMs: number | null
}

/**
 * Freezes, through the host port, the actors doing I/O to the volume that this restore has not frozen yet (and
 * the `extra` ones), and only those: an actor someone else froze is left alone, so that the thaw leaves it as it
 * found it. The new actors are recorded as the restore's (one journal event) before any is frozen, so that after a
 * crash the thaw (or the compensation) knows whose freeze it was; then they are frozen in parallel. An actor that
 * exits meanwhile is skipped. Freezes and thaws of a volume run one at a time, and once the restore has begun to
 * thaw (or has ended) no actor joins it any more: a late joiner is never frozen after the thaw has passed it.
 * Returns the newly frozen ids.
 *
 * @public
 */
export async function freezeActors(ctx: FreezeContext, runtime: VolumeRuntime, scope: FreezeScope, options: { readonly late: boolean; readonly extra?: readonly string[] }): Promise<string[]> {
  if (runtime.thawing === scope.restoreId) return []
  const host = ctx.host(scope.site)
  const listed = await listActors(ctx, host, scope.volumes)
  return runtime.withActors(async () => {
    if (runtime.thawing === scope.restoreId) return []
    const owned = new Set(ownedActors(ctx, scope).map((actor) => actor.id))
    const refreeze = listed.filter((actor) => owned.has(actor.id) && !actor.frozen && !runtime.releasedActors.has(releaseKey(scope, actor.id)))
    const fresh = listed.filter((actor) => !owned.has(actor.id) && !actor.frozen).map((actor) => actor.id)
    for (const id of options.extra ?? []) if (!owned.has(id) && !fresh.includes(id) && !listed.some((actor) => actor.id === id)) fresh.push(id)
    const frozenAt = ctx.clock.now()
    if (fresh.length > 0) {
      await ctx.state.execute((state) => decideOwnActors(state, scope.key, scope.restoreId, fresh.map((id) => ({ id, frozenAt, late: options.late }))))
    }
    // Only actors the running restore now owns are frozen: a restore that ended meanwhile owns none.
    const mine = new Set(ownedActors(ctx, scope).map((actor) => actor.id))
    const joining = fresh.filter((id) => mine.has(id))
    await Promise.all(refreeze.map((actor) => freezeOne(ctx, host, actor.id)))
    const outcomes = await Promise.all(joining.map((id) => freezeOne(ctx, host, id)))
    const frozen = joining.filter((_, i) => outcomes[i] === true)
    for (const id of joining) armActorTimeout(ctx, runtime, scope, id, frozenAt)
    if (options.late && frozen.length > 0) {
      const protection = ctx.state.protection(scope.key)
      ctx.events.emit('freeze.frozen', 'warning', {
        site: scope.site,
        volume: protection.volume,
        restoreId: scope.restoreId,
        actors: frozen,
        lateJoiner: true,
        handles: runtime.handles().length,
        heldIo: runtime.gate.pending,
      })
    }
    return frozen
  })
}

/**
 * Thaws, in parallel, every actor the restore froze, except those a freeze timeout released already (each is
 * released exactly once); an actor that exited meanwhile is skipped. From the moment it is called no actor joins the
 * restore any more, and it waits for a freeze that is in flight (so that actor is thawed too). Returns the ids
 * thawed.
 *
 * @public
 */
export async function thawActors(ctx: FreezeContext, runtime: VolumeRuntime, scope: FreezeScope): Promise<string[]> {
  runtime.thawing = scope.restoreId
  return runtime.withActors(async () => {
    const host = ctx.host(scope.site)
    const releasing = ownedActors(ctx, scope).filter((actor) => !runtime.releasedActors.has(releaseKey(scope, actor.id)))
    for (const actor of releasing) runtime.releasedActors.add(releaseKey(scope, actor.id))
    const outcomes = await Promise.all(releasing.map((actor) => thawOne(ctx, host, actor.id)))
    return releasing.filter((_, i) => outcomes[i] === true).map((actor) => actor.id)
  })
}

/**
 * Re-arms, in a new process, the actor timeouts of a restore that is resumed (each from the actor's own freeze time).
 *
 * @public
 */
export function rearmActorTimeouts(ctx: FreezeContext, runtime: VolumeRuntime, scope: FreezeScope): void {
  for (const actor of ownedActors(ctx, scope)) armActorTimeout(ctx, runtime, scope, actor.id, actor.frozenAt)
}

/** How often a running restore looks for actors that started doing I/O to the volume. */
const LATE_SWEEP_MS = 100

/**
 * Freezes, every {@link LATE_SWEEP_MS} while a restore runs, actors that started doing I/O to the volume since
 * (late joiners). Returns the function that stops it (also registered with the runtime's `disarm`).
 *
 * @public
 */
export function armLateSweep(ctx: FreezeContext, runtime: VolumeRuntime, scope: FreezeScope): () => void {
  let cancel: (() => void) | undefined
  let stopped = false
  const tick = (): void => {
    cancel = undefined
    void freezeActors(ctx, runtime, scope, { late: true })
      .catch(() => undefined)
      .then(() => {
        if (!stopped) cancel = ctx.clock.setTimer(LATE_SWEEP_MS, tick)
      })
  }
  cancel = ctx.clock.setTimer(LATE_SWEEP_MS, tick)
  const stop = (): void => {
    stopped = true
    cancel?.()
    runtime.disarm.delete(stop)
  }
  runtime.disarm.add(stop)
  return stop
}

/** The actors the running restore `scope.restoreId` recorded as frozen by it. */
function ownedActors(ctx: FreezeContext, scope: FreezeScope): ReadonlyArray<{ readonly id: string; readonly frozenAt: number }> {
  const restore = ctx.state.state.protections[scope.key]?.restore
  return restore?.restoreId === scope.restoreId ? restore.actors : []
}

function armActorTimeout(ctx: FreezeContext, runtime: VolumeRuntime, scope: FreezeScope, id: string, frozenAt: number): void {
  if (scope.actorTimeoutMs === null) return
  const cancel = ctx.clock.setTimer(Math.max(0, frozenAt + scope.actorTimeoutMs - ctx.clock.now()), () => {
    runtime.disarm.delete(cancel)
    if (runtime.releasedActors.has(releaseKey(scope, id))) return
    runtime.releasedActors.add(releaseKey(scope, id))
    const released = thawOne(ctx, ctx.host(scope.site), id).catch(() => false)
    void released.then((thawed) => {
      const protection = ctx.state.state.protections[scope.key]
      ctx.events.emit('freeze.timedOut', 'warning', {
        site: scope.site,
        volume: protection?.volume ?? scope.key,
        restoreId: scope.restoreId,
        kind: 'actor',
        actor: id,
        released: thawed ? 1 : 0,
        volumeRestored: false,
      })
    })
  })
  runtime.disarm.add(cancel)
}

/** Actors are released once per restore. */
function releaseKey(scope: FreezeScope, id: string): string {
  return `${scope.restoreId}/${id}`
}

async function listActors(ctx: FreezeContext, host: HostPort, volumes: readonly string[]): Promise<IoActor[]> {
  const byId = new Map<string, IoActor>()
  for (const volume of new Set(volumes)) {
    const actors = await retrying(ctx.clock, () => callAdapter(host.kind, 'listActors', () => host.listActors(volume)))
    for (const actor of actors) byId.set(actor.id, actor)
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** Freezes one actor; false when it no longer exists. */
function freezeOne(ctx: FreezeContext, host: HostPort, id: string): Promise<boolean> {
  return setFrozen(ctx, host, id, true)
}

/** Thaws one actor; false when it no longer exists (it exited while frozen). */
function thawOne(ctx: FreezeContext, host: HostPort, id: string): Promise<boolean> {
  return setFrozen(ctx, host, id, false)
}

async function setFrozen(ctx: FreezeContext, host: HostPort, id: string, frozen: boolean): Promise<boolean> {
  const operation = frozen ? 'freezeActor' : 'thawActor'
  try {
    await retrying(ctx.clock, () => callAdapter(host.kind, operation, () => (frozen ? host.freezeActor(id, ctx.token()) : host.thawActor(id, ctx.token()))))
    return true
  } catch (error) {
    if (isDrError(error, 'E_NOT_FOUND')) return false
    throw error
  }
}

import {
  DEFAULT_UNFENCE_RETRY,
  openVolumeModule,
  type VolumeEvents,
  type VolumeFacade,
} from '../../../src/modules/volume/index.js'
import {
  DrError,
  EventBus,
  ManualClock,
  WorkflowEngine,
  type AnyEventOf,
  type Clock,
  type CrashPoint,
  type RetryPolicy,
  type StateStore,
} from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { pathHash } from '../../../src/modules/volume/layout.js'
import { injectFaults, type FaultInjector } from '../../../src/testkit/faults.js'
import type { StoragePort } from '../../../src/ports/storage.js'

/** The fence token every test call carries. */
export const token = { scope: 'test', value: 1 }

/** Unfence retries short enough for tests (same rules as the default). */
export const quickRetry: RetryPolicy = { ...DEFAULT_UNFENCE_RETRY, initialDelayMs: 10, maxDelayMs: 40 }

/** How a test world is built; `base` and `stateStore` carry over a restart. */
export interface WorldOptions {
  readonly stateStore?: StateStore
  readonly base?: StoragePort
  readonly clock?: ManualClock
  readonly faultClock?: Clock
  readonly crashAt?: (point: CrashPoint) => boolean
  readonly unfenceRetry?: RetryPolicy
}

/** A volume module over memory storage wrapped in a fault injector, with a manual clock and an event log. */
export interface World {
  readonly clock: ManualClock
  readonly stateStore: StateStore
  readonly base: StoragePort
  readonly faults: FaultInjector<StoragePort>
  readonly events: EventBus<VolumeEvents>
  readonly seen: Array<AnyEventOf<VolumeEvents>>
  readonly workflows: WorkflowEngine
  readonly volumes: VolumeFacade
  /** A new coordinator (engine, module, injector) over the same journal and storage: what a restart looks like. */
  restart(options?: Omit<WorldOptions, 'stateStore' | 'base' | 'clock'>): Promise<World>
  /** Resumes every unfinished workflow, as `createDrSystem` does at start-up; returns the outcomes. */
  recover(): Promise<Array<PromiseSettledResult<unknown>>>
}

/** Builds a world. */
export async function world(options: WorldOptions = {}): Promise<World> {
  const clock = options.clock ?? new ManualClock(Date.UTC(2026, 10, 16, 0, 0))
  const stateStore = options.stateStore ?? memoryStateStore()
  const base = options.base ?? memoryStorage()
  const faults = injectFaults<StoragePort>(base, { name: 'east', ...(options.faultClock === undefined ? {} : { clock: options.faultClock }) })
  const events = new EventBus<VolumeEvents>(() => clock.now())
  const seen: Array<AnyEventOf<VolumeEvents>> = []
  events.onAny((event) => seen.push(event))
  const workflows = new WorkflowEngine({ stateStore, clock, ...(options.crashAt === undefined ? {} : { crashAt: options.crashAt }) })
  const module = await openVolumeModule({
    stateStore,
    workflows,
    storage: (site) => {
      if (site !== 'east') throw new DrError('E_NOT_FOUND', `site "${site}" is not configured`, { site })
      return faults.port
    },
    events,
    clock,
    token: () => token,
    unfenceRetry: options.unfenceRetry ?? quickRetry,
  })
  const self: World = {
    clock,
    stateStore,
    base,
    faults,
    events,
    seen,
    workflows,
    volumes: module.facade,
    restart: (more = {}) => world({ ...more, stateStore, base, clock }),
    recover: async () => {
      const outcomes: Array<PromiseSettledResult<unknown>> = []
      for (const id of await workflows.listRunning()) {
        outcomes.push(await settle(clock, workflows.resume(id)).then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason })))
      }
      return outcomes
    },
  }
  return self
}

/** Waits for `promise`, moving the manual clock on in `stepMs` steps meanwhile (retries and timers sleep on it). */
export async function settle<T>(clock: ManualClock, promise: Promise<T>, stepMs = 10): Promise<T> {
  let done = false
  promise.then(
    () => (done = true),
    () => (done = true),
  )
  for (let i = 0; !done && i < 100_000; i++) await clock.advance(stepMs)
  return promise
}

/** Creates expandable volume `name` with `dataConstituents` data constituents of 256 KiB and room for 64 objects. */
export async function createVolume(w: World, name = 'db', dataConstituents = 4): Promise<void> {
  await w.volumes.create({ site: 'east', volume: name, dataConstituents, size: '256KiB', maxObjects: 64 })
}

/** The constituent names of `name` with `n` data constituents, in fence order. */
export function members(name = 'db', n = 4): string[] {
  return [`${name}.ns`, `${name}.ols`, ...Array.from({ length: n }, (_, i) => `${name}.dc-${i + 1}`)]
}

/** `fence:<volume>` / `unfence:<volume>` for every fence call that went through the injector, in call order. */
export function fenceCalls(faults: FaultInjector<StoragePort>, outcome?: 'ok' | 'failed'): string[] {
  return faults.calls
    .filter((c) => (c.method === 'fence' || c.method === 'unfence') && (outcome === undefined || c.outcome === outcome))
    .map((c) => `${c.method}:${String(c.args[0])}`)
}

/** The volumes among `volumes` that are fenced now. */
export async function fencedVolumes(storage: StoragePort, volumes: readonly string[]): Promise<string[]> {
  const fenced: string[] = []
  for (const volume of volumes) if (await storage.isFenced(volume)) fenced.push(volume)
  return fenced
}

/** Snapshot names per constituent. */
export async function memberSnapshots(storage: StoragePort, volumes: readonly string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {}
  for (const volume of volumes) out[volume] = (await storage.listSnapshots(volume)).map((s) => s.name)
  return out
}

/** A path that the volume places on data constituent `ordinal` of `count` active ones (placement is by path hash). */
export function pathOn(ordinal: number, count: number, prefix = 'obj'): string {
  for (let i = 0; ; i++) if (pathHash(`${prefix}-${i}`) % count === ordinal - 1) return `${prefix}-${i}`
}

/** UTF-8 bytes of `text`. */
export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

/** `bytes` as UTF-8 text. */
export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data)
}

/** The names of the events seen, in order. */
export function names(w: World): string[] {
  return w.seen.map((e) => e.name)
}

/**
 * Wraps a storage port so that every fence, unfence and createSnapshot call logs `start <method> <volume>` when
 * it is issued and `end <method> <volume>` when it resolves: enough to check that a call started only after
 * another one finished.
 */
export function recording(storage: StoragePort): { port: StoragePort; log: string[] } {
  const log: string[] = []
  const traced = new Set(['fence', 'unfence', 'createSnapshot'])
  const port = new Proxy(storage, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value === 'function' && (typeof property !== 'string' || !traced.has(property))) return (value as (...a: unknown[]) => unknown).bind(target)
      if (typeof property !== 'string' || typeof value !== 'function') return value
      return async (...args: unknown[]) => {
        log.push(`start ${property} ${String(args[0])}`)
        const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
        log.push(`end ${property} ${String(args[0])}`)
        return result
      }
    },
  })
  return { port, log }
}

/**
 * Wraps a storage port so that a test can stop writes: after `pass(n)`, the next `n` writes go through and the one
 * after them is held (before it reaches the storage) until `release()`. `held` resolves once a write is held.
 */
export function gatedWrites(storage: StoragePort): { port: StoragePort; pass(n: number): Promise<void>; release(): void } {
  let remaining = Infinity
  let releaseHeld: (() => void) | undefined
  let onHeld: (() => void) | undefined
  const port = new Proxy(storage, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      const bound = (value as (...a: unknown[]) => Promise<unknown>).bind(target)
      if (property !== 'write') return bound
      return async (...args: unknown[]) => {
        if (remaining === 0) {
          remaining = Infinity
          const released = new Promise<void>((resolve) => (releaseHeld = resolve))
          onHeld?.()
          await released
        } else remaining--
        return bound(...args)
      }
    },
  })
  return {
    port,
    pass: (n) => {
      remaining = n
      return new Promise<void>((resolve) => (onHeld = resolve))
    },
    release: () => releaseHeld?.(),
  }
}

import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { getOrThrow } from '../../kernel/either.js'
import { implementing } from '../../kernel/codecs.js'
import { freezeActors } from './actor-freezer.js'
import type { FreezeCoordinator } from './coordinator.js'
import type { MountPropertyHook } from './context.js'
import { decideProtect, decideUnprotect } from './decide.js'
import {
  ListInput,
  LockInput,
  OpenInput,
  ProtectInput,
  ReportInput,
  RestoreInput,
  VolumeRefInput,
  type ListProtectionsOptions,
  type LockOptions,
  type OpenOptions,
  type ProtectOptions,
  type ReportDisruptionOptions,
  type RestoreOptions,
  type VolumeRef,
} from './inputs.js'
import { ensureMounted } from './mounting.js'
import type { RestoreResult } from './restore-workflow.js'
import { AUTO_RESTORE_LIMIT, protectionKey, type ProtectionConfig, type ProtectionRecord } from './state.js'
import type { LockGrant } from './update-lock.js'
import { DEFAULT_CACHE_POLICY, VolumeHandle, type HandleCachePolicy } from './volume-handle.js'

/**
 * Defaults of `freeze.protect`: no actor timeout beyond the freeze timeout, no health probe, the update lock
 * retried after a random 10–100 ms wait, 50 times at most, no automatic rollback that would discard writes already
 * on the volume, and at most five automatic restores in ten minutes.
 *
 * @public
 */
export const FREEZE_DEFAULTS = { lockRetry: { minDelayMs: 10, maxDelayMs: 100, maxAttempts: 50 }, allowRollback: false, autoRestoreLimit: AUTO_RESTORE_LIMIT } as const

/**
 * A protected volume as the facade returns it: its configuration, the volume backing it now, its status and
 * its running and last restore.
 *
 * @public
 */
export type ProtectionView = ProtectionRecord

/**
 * The I/O gate of a protected volume in this process, as `freeze.gate` shows it: whether it is frozen, how many
 * operations wait in it and how many run, and the restore holding it (null: none).
 *
 * @public
 */
export interface GateView {
  readonly frozen: boolean
  readonly heldIo: number
  readonly inFlight: number
  readonly restoreId: string | null
}

/**
 * What `freeze.reportDisruption` returns: the restore the report started or joined.
 *
 * @public
 */
export interface ReportResult {
  readonly restoreId: string
  readonly coalesced: boolean
}

const HookCodec = implementing<MountPropertyHook>('MountPropertyHook (an object with name and capture())', ['capture'])

/**
 * Non-disruptive restore (`dr.freeze`): protect a volume mounted at a path, give applications handles whose I/O
 * passes the volume's I/O gate, and restore the volume — from a snapshot, a replica (the mirror's destination) or
 * a standby — without the applications seeing an error: their I/O is held, only the actors using the volume are
 * frozen, the volume is remounted with the same path and identity, cached writes are journaled and replayed, and
 * everything is thawed. Disruptions are detected from intercepted I/O errors, health probes and reports; a planned
 * restore is `restore()`. Every method validates its options with io-ts and rejects with a `DrError`; a rejected
 * call changes nothing. Restores are durable workflows: after a crash, `recover()` finishes or compensates them.
 *
 * @public
 */
export class FreezeFacade {
  readonly #co: FreezeCoordinator

  /** Built by `openFreezeModule`. */
  /** @internal Built by `openFreezeModule`; reach it as `dr.freeze`. */
  constructor(coordinator: FreezeCoordinator) {
    this.#co = coordinator
  }

  /**
   * Protects a volume of a site: mounts it at `mountPath` with `identity` (unless it is mounted there already) and
   * records where it can be restored from and its freeze timeout. Calling it again updates the sources, timeouts,
   * probe, lock retry and automatic restore limits (a volume kept dismounted after a failed restore stays so: only
   * a restore that succeeds mounts it again). `E_NOT_FOUND` if the volume does not exist, `E_CONFLICT` if the path
   * is taken.
   */
  async protect(options: ProtectOptions): Promise<ProtectionView> {
    const input = decode(ProtectInput, options, 'freeze.protect options')
    const config: ProtectionConfig = {
      site: input.site,
      volume: input.volume,
      mountPath: input.mountPath,
      identity: input.identity,
      sources: input.sources,
      freezeTimeoutMs: input.freezeTimeoutMs,
      actorTimeoutMs: input.actorTimeoutMs === undefined ? input.freezeTimeoutMs : input.actorTimeoutMs,
      probeEveryMs: input.probeEveryMs ?? null,
      mountOptions: input.mountOptions ?? {},
      readOnly: input.readOnly ?? false,
      lockRetry: { ...FREEZE_DEFAULTS.lockRetry, ...input.lockRetry },
      allowRollback: input.allowRollback ?? FREEZE_DEFAULTS.allowRollback,
      autoRestoreLimit: input.autoRestoreLimit ?? FREEZE_DEFAULTS.autoRestoreLimit,
    }
    const { ctx } = this.#co
    const key = protectionKey(input.site, input.volume)
    getOrThrow(decideProtect(ctx.state.state, key, config))
    const storage = ctx.storage(input.site)
    const existing = ctx.state.state.protections[key]
    const active = existing?.activeVolume ?? input.volume
    await callAdapter(storage.kind, 'volumeInfo', () => storage.volumeInfo(active))
    if (existing === undefined || (existing.restore === null && existing.dismounted !== true)) {
      await ensureMounted(ctx, { ...config, activeVolume: active, status: 'protected', failure: null, restore: null, lastRestore: null })
    }
    await ctx.state.execute((state) => decideProtect(state, key, config))
    this.#co.runtime(key).gate.setTimeoutMs(config.freezeTimeoutMs)
    this.#co.armProbe(key)
    return ctx.state.protection(key)
  }

  /** Stops protecting a volume (it stays mounted). `E_CONFLICT` while it is being restored or handles are open. */
  async unprotect(options: VolumeRef): Promise<void> {
    const key = this.#key(decode(VolumeRefInput, options, 'freeze.unprotect options'))
    const { ctx } = this.#co
    getOrThrow(decideUnprotect(ctx.state.state, key))
    const handles = this.#co.runtime(key).handles().length
    if (handles > 0) throw new DrError('E_CONFLICT', `volume ${key} has ${handles} open handles; close them first`, { key, handles })
    await ctx.state.execute((state) => decideUnprotect(state, key))
    this.#co.forget(key)
  }

  /** One protected volume; `E_NOT_FOUND` if it is not protected. */
  async get(options: VolumeRef): Promise<ProtectionView> {
    return this.#co.ctx.state.protection(this.#key(decode(VolumeRefInput, options, 'freeze.get options')))
  }

  /** Every protected volume (of one site when given), sorted by site and volume. */
  async list(options: ListProtectionsOptions = {}): Promise<readonly ProtectionView[]> {
    const input = decode(ListInput, options, 'freeze.list options')
    return Object.entries(this.#co.ctx.state.state.protections)
      .filter(([, record]) => input.site === undefined || record.site === input.site)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, record]) => record)
  }

  /**
   * Opens a handle on a protected volume (by name or by mount path) for an application. If a restore is running
   * and has not begun to thaw, the handle's actor is frozen with the others (a late joiner) and thawed with them.
   */
  async open(options: OpenOptions): Promise<VolumeHandle> {
    const input = decode(OpenInput, options, 'freeze.open options')
    const { ctx } = this.#co
    const key = 'volume' in input ? protectionKey(input.site, input.volume) : this.#keyByPath(input.site, input.mountPath)
    const record = ctx.state.protection(key)
    const runtime = this.#co.runtime(key)
    const policy: HandleCachePolicy = {
      mode: input.cache?.mode ?? DEFAULT_CACHE_POLICY.mode,
      flushEveryMs: input.cache?.flushEveryMs === undefined ? DEFAULT_CACHE_POLICY.flushEveryMs : input.cache.flushEveryMs,
      maxDirtyBytes: input.cache?.maxDirtyBytes ?? DEFAULT_CACHE_POLICY.maxDirtyBytes,
    }
    const handle = new VolumeHandle(runtime, { id: input.id ?? runtime.nextHandleId(), actor: input.actor ?? null, policy })
    const restore = record.restore
    if (input.actor !== undefined && restore !== null) {
      const scope = { site: record.site, key, volumes: [record.volume, record.activeVolume], restoreId: restore.restoreId, actorTimeoutMs: record.actorTimeoutMs }
      await freezeActors(ctx, runtime, scope, { late: true, extra: [input.actor] }).catch(() => undefined)
    }
    return handle
  }

  /**
   * Restores a protected volume now (a planned restore), from `source` or from its configured sources in order,
   * and resolves once applications are thawed. Joins the restore already running for the volume, if any. Rejects
   * with `E_PRECONDITION` when no non-disruptive restore is possible (nothing was frozen or dismounted), else
   * with the error that stopped the restore (everything compensated).
   */
  async restore(options: RestoreOptions): Promise<RestoreResult> {
    const input = decode(RestoreInput, options, 'freeze.restore options')
    const key = this.#key(input)
    this.#co.ctx.state.protection(key)
    const started = this.#co.detect(key, { channel: 'planned', planned: true, ...(input.source === undefined ? {} : { sources: [input.source] }) })
    return started.done
  }

  /**
   * Reports a disruption the embedder's own monitoring saw (a kernel storage exception, a file-system event): starts
   * a restore, or joins the running one. The named actors are frozen even if the host does not list them.
   */
  async reportDisruption(options: ReportDisruptionOptions): Promise<ReportResult> {
    const input = decode(ReportInput, options, 'freeze.reportDisruption options')
    const key = this.#key(input)
    this.#co.ctx.state.protection(key)
    const error = input.code === undefined && input.reason === undefined ? undefined : new DrError('E_UNAVAILABLE', input.reason ?? input.code ?? '', { reported: input.code ?? null })
    const started = this.#co.detect(key, { channel: 'reported', planned: false, actors: input.actors ?? [], ...(error === undefined ? {} : { error }) })
    void started.done.catch(() => undefined)
    return { restoreId: started.restoreId, coalesced: started.coalesced }
  }

  /** Waits for the restore running for a volume (if any) and returns how it ended; the last restore otherwise. */
  async settled(options: VolumeRef): Promise<ProtectionView> {
    const key = this.#key(decode(VolumeRefInput, options, 'freeze.settled options'))
    this.#co.ctx.state.protection(key)
    await this.#co.runtime(key).chain
    return this.#co.ctx.state.protection(key)
  }

  /** The I/O gate of a protected volume in this process: frozen or not, operations held and running, its restore. */
  async gate(options: VolumeRef): Promise<GateView> {
    const key = this.#key(decode(VolumeRefInput, options, 'freeze.gate options'))
    this.#co.ctx.state.protection(key)
    const runtime = this.#co.runtime(key)
    return { frozen: runtime.gate.frozen, heldIo: runtime.gate.pending, inFlight: runtime.gate.inFlight, restoreId: runtime.active?.restoreId ?? null }
  }

  /**
   * Takes a protected volume's update lock for `holder` (a lock-respecting writer), waiting with a random backoff
   * while a restore or another writer holds it. `E_CONFLICT` (naming the holder) after the protection's (or
   * `maxAttempts`) attempts.
   */
  async lockVolume(options: LockOptions): Promise<LockGrant> {
    const input = decode(LockInput, options, 'freeze.lockVolume options')
    const record = this.#co.ctx.state.protection(this.#key(input))
    const policy = { ...record.lockRetry, ...(input.maxAttempts === undefined ? {} : { maxAttempts: input.maxAttempts }) }
    return this.#co.ctx.locks.acquire(record.site, record.volume, input.holder, policy)
  }

  /** Releases a protected volume's update lock if `holder` has it; resolves with whether it did. */
  async unlockVolume(options: LockOptions): Promise<boolean> {
    const input = decode(LockInput, options, 'freeze.unlockVolume options')
    const record = this.#co.ctx.state.protection(this.#key(input))
    return this.#co.ctx.locks.release(record.site, record.volume, input.holder)
  }

  /** Who holds a protected volume's update lock, or null. */
  async lockHolder(options: VolumeRef): Promise<string | null> {
    const input = decode(VolumeRefInput, options, 'freeze.lockHolder options')
    const record = this.#co.ctx.state.protection(this.#key(input))
    return (await this.#co.ctx.locks.holderOf(record.site, record.volume))?.holder ?? null
  }

  /**
   * Registers configuration the embedder keeps with mounts (export rules, a Windows mount folder…): captured
   * before every dismount and given back after the remount. `E_CONFLICT` if a hook of that name exists.
   */
  registerMountHook(hook: MountPropertyHook): void {
    const valid = decode(HookCodec, hook, 'freeze.registerMountHook hook')
    if (typeof valid.name !== 'string' || valid.name.length === 0) {
      throw new DrError('E_INVALID_INPUT', 'invalid freeze.registerMountHook hook: field "name" must be a non-empty string', {
        what: 'freeze.registerMountHook hook',
        violations: [{ path: 'name', expected: 'non-empty string', actual: String(valid.name) }],
      })
    }
    const hooks = this.#co.ctx.hooks
    if (hooks.some((other) => other.name === valid.name)) throw new DrError('E_CONFLICT', `a mount hook "${valid.name}" is registered already`, { name: valid.name })
    hooks.push(valid)
  }

  /** Resumes every restore a crash interrupted; resolves with how many, once they have all settled. */
  async recover(): Promise<number> {
    return this.#co.recover().catch((error: unknown) => {
      throw toDrError(error)
    })
  }

  #key(ref: { readonly site: string; readonly volume: string }): string {
    return protectionKey(ref.site, ref.volume)
  }

  #keyByPath(site: string, mountPath: string): string {
    const found = Object.entries(this.#co.ctx.state.state.protections).find(([, record]) => record.site === site && record.mountPath === mountPath)
    if (found === undefined) throw new DrError('E_NOT_FOUND', `no protected volume is mounted at "${mountPath}" on site "${site}"`, { site, mountPath })
    return found[0]
  }
}

import * as t from 'io-ts'
import path from 'node:path'
import { DrError, adapterError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { NonNegativeInt } from '../../kernel/codecs.js'
import { systemClock, type Clock } from '../../kernel/clock.js'
import { FenceGuard, type FenceToken } from '../../kernel/fencing.js'
import type { HookRequest, HookResult, HostCallOptions, HostInfo, HostPolicies, HostPort, IoActor, MountInfo, QuiesceResult, VmInfo, VmSpec } from '../../ports/host.js'
import { HookRequestCodec, HostCallOptionsCodec, MountInfoCodec, VmSpecCodec } from '../../ports/host-codecs.js'
import { AbsolutePath, ProcessActorOptionsCodec, ProcessHostOptionsCodec } from './codecs.js'
import { DiskSync } from './disk-sync.js'
import { builtInGuest } from './guest.js'
import { runHookProcess } from './hook-runner.js'
import { HostInventory } from './host-inventory.js'
import { MountTable } from './mount-table.js'
import { ProcessActors } from './process-actors.js'
import type { ProcessGroup } from './process-group.js'
import { ProcessVms } from './process-vms.js'
import type { FreezeMechanism, GuestCommand, ProcessActorOptions, ProcessExit, ProcessHostOptions } from './types.js'

export type { FreezeMechanism, GuestCommand, ProcessActorOptions, ProcessExit, ProcessHostOptions } from './types.js'
export type { GuestReply, GuestRequest } from './guest.js'

/**
 * A `HostPort` of kind `process` for local OS processes. A VM is a child process running a guest program, given
 * its disk paths (directories). Quiesce is not a signal: it is a JSON-line request on the guest's stdin that the
 * guest acknowledges on its stdout once it holds its writes (see `GuestRequest`). An I/O actor is a VM guest or a
 * process started with {@link ProcessHost.startActor}, frozen with SIGSTOP and thawed with SIGCONT (its whole
 * process group); a mount is a directory plus a record in a registry under `workDir`; a hook runs through the
 * shell with a timeout. With `disks: { storage }`, the directories are the guest's real disks: a VM's disk volumes
 * are materialised at its disk paths when it powers on and flushed back when it is quiesced and when it powers
 * off, and a mounted volume is materialised at mount and flushed at dismount (so a backup of the volume holds
 * what the guest wrote, and a restored volume is what the guest reads after it starts again or is remounted).
 * Hosts are logical: capacity is accounted, every VM runs on this machine. The registry keeps the mounts, the
 * fence tokens, the registered VMs and the idempotency keys across restarts (a VM is off after a restart). Every
 * mutating call checks its fence token, and `close()` ends every process the adapter started. POSIX only. Build
 * one with {@link processHost}.
 *
 * @public
 */
export class ProcessHost implements HostPort {
  readonly kind = 'process'
  readonly #clock: Clock
  readonly #guest: GuestCommand
  readonly #rootDir: string
  readonly #hookShell: string
  readonly #stopGraceMs: number
  readonly #controlTimeoutMs: number
  readonly #freezeMechanism: FreezeMechanism
  readonly #guard = new FenceGuard('process.host')
  readonly #mounts: MountTable
  readonly #ready: Promise<void>
  readonly #closing = new AbortController()
  readonly #hosts: HostInventory
  readonly #vms: ProcessVms
  readonly #disks: DiskSync | undefined
  readonly #actors = new ProcessActors()
  readonly #hooks = new Set<ProcessGroup>()
  #latestToken: FenceToken | undefined
  #closed: Promise<void> | undefined

  constructor(options: ProcessHostOptions) {
    if (process.platform === 'win32') {
      throw new DrError('E_PRECONDITION', 'process host: needs POSIX process groups and signals', { adapter: 'process' })
    }
    const input = decode(ProcessHostOptionsCodec, options, 'process host options')
    this.#clock = input.clock ?? systemClock
    this.#guest = input.guest ?? builtInGuest()
    this.#rootDir = path.resolve(input.rootDir ?? '/')
    this.#hookShell = input.hookShell ?? '/bin/sh'
    this.#stopGraceMs = input.stopGraceMs ?? 5000
    this.#freezeMechanism = input.freezeMechanism ?? 'stop'
    this.#controlTimeoutMs = input.controlTimeoutMs ?? 5000
    this.#hosts = new HostInventory(input.hosts)
    this.#disks = input.disks === undefined ? undefined : new DiskSync(input.disks.storage)
    this.#vms = new ProcessVms({
      clock: this.#clock,
      guest: this.#guest,
      rootDir: this.#rootDir,
      stopGraceMs: this.#stopGraceMs,
      controlTimeoutMs: this.#controlTimeoutMs,
      hostInfo: (name) => this.#hostInfo(name),
      disks: this.#disks,
      latestToken: () => this.#latestToken,
      persist: () => this.#mounts.save(),
      closing: this.#closing.signal,
      closedError: (operation) => this.#closedError(operation),
    })
    this.#mounts = new MountTable(path.resolve(input.workDir), this.#rootDir, this.#guard, () => this.#vms.snapshot())
    this.#ready = this.#mounts.load().then((state) => this.#vms.load(state))
    this.#ready.catch(() => undefined)
  }

  /**
   * Starts a plain application process as an I/O actor doing I/O to `options.volumes`, in its own process group.
   * It is listed by `listActors` until it exits. `E_CONFLICT` if a running actor or a registered VM has the id.
   */
  async startActor(options: ProcessActorOptions, token: FenceToken): Promise<IoActor> {
    await this.#enter('startActor')
    const input = decode(ProcessActorOptionsCodec, options, 'actor options')
    await this.#fence(token, 'startActor')
    if (this.#vms.has(input.id)) {
      throw new DrError('E_CONFLICT', `process host: "${input.id}" is a VM`, { adapter: 'process', actor: input.id })
    }
    const actor = await this.#actors.start(input).catch((error: unknown) => {
      throw adapterError('process', 'startActor', error)
    })
    if (this.#closing.signal.aborted) {
      await this.#actors.group(input.id)?.stop(this.#clock, this.#stopGraceMs)
      throw this.#closedError('startActor')
    }
    return actor
  }

  /** Ends a process actor (SIGTERM, then SIGKILL after the grace period) and resolves once it has exited. */
  async stopActor(actorId: string, token: FenceToken): Promise<ProcessExit> {
    await this.#enter('stopActor')
    await this.#fence(token, 'stopActor')
    const group = this.#actors.group(actorId)
    if (group === undefined) throw new DrError('E_NOT_FOUND', `process host: no running process actor "${actorId}"`, { adapter: 'process', actor: actorId })
    return group.stop(this.#clock, this.#stopGraceMs)
  }

  /** Resolves with how a process actor ended, once it has (at once if it has). `E_NOT_FOUND` if never started. */
  async actorExit(actorId: string): Promise<ProcessExit> {
    await this.#enter('actorExit')
    const exit = this.#actors.exit(actorId)
    if (exit === undefined) throw new DrError('E_NOT_FOUND', `process host: no process actor "${actorId}"`, { adapter: 'process', actor: actorId })
    return exit
  }

  async listHosts(): Promise<readonly HostInfo[]> {
    await this.#enter('listHosts')
    return this.#hosts.names().map((name) => this.#hostInfo(name))
  }

  async hostInfo(host: string): Promise<HostInfo> {
    await this.#enter('hostInfo')
    return this.#hostInfo(host)
  }

  async registerVm(host: string, spec: VmSpec, token: FenceToken, options: HostCallOptions = {}): Promise<VmInfo> {
    await this.#enter('registerVm')
    const input = decode(VmSpecCodec, spec, 'VM spec')
    const key = decode(HostCallOptionsCodec, options, 'registerVm options').idempotencyKey
    await this.#fence(token, 'registerVm')
    return this.#vms.register(host, input, key, (id) => this.#actors.has(id))
  }

  async unregisterVm(vmId: string, token: FenceToken): Promise<void> {
    await this.#enter('unregisterVm')
    await this.#fence(token, 'unregisterVm')
    await this.#vms.unregister(vmId)
  }

  async getVm(vmId: string): Promise<VmInfo | undefined> {
    await this.#enter('getVm')
    return this.#vms.get(vmId)
  }

  async listVms(host?: string): Promise<readonly VmInfo[]> {
    await this.#enter('listVms')
    return this.#vms.list(host)
  }

  async powerOn(vmId: string, token: FenceToken, options: HostCallOptions = {}): Promise<void> {
    await this.#enter('powerOn')
    const key = decode(HostCallOptionsCodec, options, 'powerOn options').idempotencyKey
    await this.#fence(token, 'powerOn')
    await this.#vms.powerOn(vmId, key)
  }

  async powerOff(vmId: string, token: FenceToken): Promise<void> {
    await this.#enter('powerOff')
    await this.#fence(token, 'powerOff')
    await this.#vms.powerOff(vmId, token)
  }

  async quiesce(vmId: string, timeoutMs: number): Promise<QuiesceResult> {
    await this.#enter('quiesce')
    return this.#vms.quiesce(vmId, decode(NonNegativeInt, timeoutMs, 'quiesce timeoutMs'))
  }

  async unquiesce(vmId: string): Promise<void> {
    await this.#enter('unquiesce')
    await this.#vms.unquiesce(vmId)
  }

  async hostPolicies(host: string): Promise<HostPolicies | undefined> {
    await this.#enter('hostPolicies')
    return this.#hosts.policies(host)
  }

  async listActors(volume: string): Promise<readonly IoActor[]> {
    await this.#enter('listActors')
    const actors: IoActor[] = [...this.#vms.actors(volume), ...this.#actors.list(volume)]
    return actors.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  async presentToken(token: FenceToken): Promise<void> {
    await this.#enter('presentToken')
    await this.#fence(token, 'presentToken')
  }

  async freezeActor(actorId: string, token: FenceToken): Promise<void> {
    await this.#enter('freezeActor')
    await this.#fence(token, 'freezeActor')
    await this.#actorGroup(actorId).freeze(this.#freezeMechanism)
  }

  async thawActor(actorId: string, token: FenceToken): Promise<void> {
    await this.#enter('thawActor')
    await this.#fence(token, 'thawActor')
    this.#actorGroup(actorId).thaw()
  }

  async mount(mount: MountInfo, token: FenceToken): Promise<MountInfo> {
    await this.#enter('mount')
    const input = decode(MountInfoCodec, mount, 'mount')
    decode(AbsolutePath, input.path, 'mount path')
    await this.#fence(token, 'mount')
    const disks = this.#disks
    const materialise = async (dir: string): Promise<void> => disks?.materialise(input.volume, dir)
    return this.#mounts.mount(input, materialise).catch((error: unknown) => {
      throw adapterError('process', 'mount', error)
    })
  }

  async dismount(mountPath: string, token: FenceToken): Promise<void> {
    await this.#enter('dismount')
    const key = decode(t.string, mountPath, 'mount path')
    await this.#fence(token, 'dismount')
    const disks = this.#disks
    const flush = async (mounted: MountInfo, dir: string): Promise<void> => (mounted.readOnly ? undefined : disks?.flush(mounted.volume, dir, token))
    await this.#mounts.dismount(key, flush).catch((error: unknown) => {
      throw adapterError('process', 'dismount', error)
    })
  }

  async getMount(mountPath: string): Promise<MountInfo | undefined> {
    await this.#enter('getMount')
    return this.#mounts.get(mountPath)
  }

  async listMounts(): Promise<readonly MountInfo[]> {
    await this.#enter('listMounts')
    return this.#mounts.list()
  }

  async runHook(request: HookRequest): Promise<HookResult> {
    await this.#enter('runHook')
    const input = decode(HookRequestCodec, request, 'hook request')
    return runHookProcess(input, {
      shell: this.#hookShell,
      clock: this.#clock,
      closing: this.#closing.signal,
      closedError: () => this.#closedError('runHook'),
      track: (group) => {
        this.#hooks.add(group)
        return () => this.#hooks.delete(group)
      },
    })
  }

  /**
   * Ends every process the adapter started (a frozen one is continued so it can act on SIGTERM; SIGKILL after
   * the grace period) and waits for the registry to be on disk. Later calls reject with `E_CLOSED`. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= this.#shutdown()
    return this.#closed
  }

  async #shutdown(): Promise<void> {
    this.#closing.abort()
    const stopping: Array<Promise<unknown>> = [this.#vms.stopAll(this.#closedError('close'))]
    for (const group of this.#actors.groups()) stopping.push(group.stop(this.#clock, this.#stopGraceMs))
    for (const hook of this.#hooks) stopping.push(hook.stop(this.#clock, this.#stopGraceMs))
    await Promise.all(stopping)
    await this.#ready.catch(() => undefined)
    await this.#mounts.settled()
  }

  /**
   * Checks `token` and, when it raised the highest token of its scope, saves the new highest durably. The token
   * is remembered as the newest accepted one (what a quiesce flushes the disks with).
   */
  async #fence(token: FenceToken, operation: string): Promise<void> {
    const before = this.#guard.highest(token?.scope)
    this.#guard.check(token, operation)
    this.#latestToken = { scope: token.scope, value: token.value }
    if (this.#guard.highest(token.scope) === before) return
    await this.#mounts.save().catch((error: unknown) => {
      throw adapterError('process', operation, error)
    })
  }

  #actorGroup(actorId: string): ProcessGroup {
    const vmGroup = this.#vms.group(actorId)
    if (vmGroup !== undefined) return vmGroup
    const group = this.#actors.group(actorId)
    if (group !== undefined) return group
    throw new DrError('E_NOT_FOUND', `process host: no running actor "${actorId}"`, { adapter: 'process', actor: actorId })
  }

  #hostInfo(host: string): HostInfo {
    return this.#hosts.info(host, this.#vms.allocations())
  }

  /** Fails once the host is closing, then waits for the registry to be loaded (rejecting if it could not be). */
  async #enter(operation: string): Promise<void> {
    if (this.#closing.signal.aborted) throw this.#closedError(operation)
    await this.#ready.catch((error: unknown) => {
      throw adapterError('process', operation, error)
    })
    if (this.#closing.signal.aborted) throw this.#closedError(operation)
  }

  #closedError(operation: string): DrError {
    return new DrError('E_CLOSED', `process.host.${operation}: the host adapter is closed`, { adapter: 'process', operation })
  }
}

/**
 * Creates a `HostPort` of kind `process`: VMs as child processes, freeze as SIGSTOP, mounts as directories with a
 * registry under `workDir`; with `disks: { storage }`, VM disks and mounts hold what the site's volumes hold.
 *
 * @example
 * ```ts
 * const storage = localStorage({ dir: './east' })
 * const host = processHost({ workDir: './host-state', hosts: [{ name: 'node-1', cpus: 8, memoryMb: 16384 }], disks: { storage } })
 * ```
 * @public
 */
export function processHost(options: ProcessHostOptions): ProcessHost {
  return new ProcessHost(options)
}

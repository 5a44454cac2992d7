import * as t from 'io-ts'
import path from 'node:path'
import { DrError, adapterError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { NonNegativeInt } from '../../kernel/codecs.js'
import { systemClock, type Clock } from '../../kernel/clock.js'
import { FenceGuard, type FenceToken } from '../../kernel/fencing.js'
import type { HookRequest, HookResult, HostInfo, HostPort, IoActor, MountInfo, QuiesceResult, VmInfo, VmSpec } from '../../ports/host.js'
import { HookRequestCodec, MountInfoCodec, VmSpecCodec } from '../../ports/host-codecs.js'
import { AbsolutePath, ProcessActorOptionsCodec, ProcessHostOptionsCodec } from './codecs.js'
import { builtInGuest } from './guest.js'
import { runHookProcess } from './hook-runner.js'
import { HostInventory, type Allocation } from './host-inventory.js'
import { MountTable, ensurePath, hostPath } from './mount-table.js'
import { ProcessActors } from './process-actors.js'
import type { ProcessGroup } from './process-group.js'
import { RunningGuest, type GuestDisk } from './running-guest.js'
import type { FreezeMechanism, GuestCommand, ProcessActorOptions, ProcessExit, ProcessHostOptions } from './types.js'

export type { FreezeMechanism, GuestCommand, ProcessActorOptions, ProcessExit, ProcessHostOptions } from './types.js'
export type { GuestReply, GuestRequest } from './guest.js'

interface VmRecord {
  readonly spec: VmSpec
  readonly host: string
  guest: RunningGuest | undefined
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * A `HostPort` of kind `process` for local OS processes. A VM is a child process running a guest program
 * (given its disk paths, and quiesced over a line protocol on its stdin and stdout); an I/O actor is a VM guest
 * or a process started with {@link ProcessHost.startActor}, frozen with SIGSTOP and thawed with SIGCONT (its whole
 * process group); a mount is a directory plus a record in a registry under `workDir` that survives restarts; a
 * hook runs through the shell with a timeout. Hosts are logical: capacity is accounted, every VM runs on this
 * machine. Every mutating call checks its fence token (tokens are persisted with the mounts), and `close()`
 * ends every process the adapter started. POSIX only. Build one with {@link processHost}.
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
  readonly #vms = new Map<string, VmRecord>()
  readonly #actors = new ProcessActors()
  readonly #hooks = new Set<ProcessGroup>()
  readonly #vmQueues = new Map<string, Promise<void>>()
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
    this.#mounts = new MountTable(path.resolve(input.workDir), this.#rootDir, this.#guard)
    this.#ready = this.#mounts.load()
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

  async registerVm(host: string, spec: VmSpec, token: FenceToken): Promise<VmInfo> {
    await this.#enter('registerVm')
    const input = decode(VmSpecCodec, spec, 'VM spec')
    await this.#fence(token, 'registerVm')
    const record = this.#hostInfo(host)
    if (this.#vms.has(input.id) || this.#actors.has(input.id)) {
      throw new DrError('E_CONFLICT', `process host: VM "${input.id}" is registered already`, { adapter: 'process', vm: input.id })
    }
    if (!record.online) throw new DrError('E_PRECONDITION', `process host: host "${host}" is offline`, { adapter: 'process', host, vm: input.id })
    if (record.allocatedCpus + input.cpus > record.cpus || record.allocatedMemoryMb + input.memoryMb > record.memoryMb) {
      throw new DrError('E_PRECONDITION', `process host: host "${host}" lacks the CPU or memory for VM "${input.id}"`, {
        adapter: 'process',
        host,
        vm: input.id,
        freeCpus: record.cpus - record.allocatedCpus,
        freeMemoryMb: record.memoryMb - record.allocatedMemoryMb,
      })
    }
    const vm: VmRecord = { spec: structuredClone(input), host, guest: undefined }
    this.#vms.set(input.id, vm)
    return this.#vmInfo(vm)
  }

  async unregisterVm(vmId: string, token: FenceToken): Promise<void> {
    await this.#enter('unregisterVm')
    await this.#fence(token, 'unregisterVm')
    const vm = this.#vm(vmId)
    await this.#serially(vmId, async () => {
      if (vm.guest?.running === true) {
        throw new DrError('E_PRECONDITION', `process host: VM "${vmId}" is running; power it off first`, { adapter: 'process', vm: vmId })
      }
      if (this.#vms.get(vmId) === vm) this.#vms.delete(vmId)
    })
  }

  async getVm(vmId: string): Promise<VmInfo | undefined> {
    await this.#enter('getVm')
    const vm = this.#vms.get(vmId)
    return vm === undefined ? undefined : this.#vmInfo(vm)
  }

  async listVms(host?: string): Promise<readonly VmInfo[]> {
    await this.#enter('listVms')
    return [...this.#vms.values()]
      .filter((vm) => host === undefined || vm.host === host)
      .sort((a, b) => byName(a.spec.id, b.spec.id))
      .map((vm) => this.#vmInfo(vm))
  }

  async powerOn(vmId: string, token: FenceToken): Promise<void> {
    await this.#enter('powerOn')
    await this.#fence(token, 'powerOn')
    const vm = this.#vm(vmId)
    await this.#serially(vmId, async () => {
      if (vm.guest?.running === true) return
      if (!this.#hostInfo(vm.host).online) {
        throw new DrError('E_PRECONDITION', `process host: host "${vm.host}" of VM "${vmId}" is offline`, { adapter: 'process', vm: vmId, host: vm.host })
      }
      const disks: GuestDisk[] = vm.spec.disks.map((disk) => ({ ...disk, path: hostPath(this.#rootDir, disk.mountPath) }))
      try {
        for (const disk of disks) await ensurePath(disk.path)
        vm.guest = await RunningGuest.start(vm.spec, vm.host, disks, this.#guest, this.#clock)
      } catch (error) {
        throw adapterError('process', 'powerOn', error)
      }
      if (this.#closing.signal.aborted) {
        await vm.guest.stop(this.#stopGraceMs)
        throw this.#closedError('powerOn')
      }
    })
  }

  async powerOff(vmId: string, token: FenceToken): Promise<void> {
    await this.#enter('powerOff')
    await this.#fence(token, 'powerOff')
    const vm = this.#vm(vmId)
    await this.#serially(vmId, async () => {
      await vm.guest?.stop(this.#stopGraceMs)
      vm.guest = undefined
    })
  }

  async quiesce(vmId: string, timeoutMs: number): Promise<QuiesceResult> {
    await this.#enter('quiesce')
    const timeout = decode(NonNegativeInt, timeoutMs, 'quiesce timeoutMs')
    const vm = this.#vm(vmId)
    const guest = vm.guest
    if (guest === undefined || !guest.running) {
      throw new DrError('E_PRECONDITION', `process host: VM "${vmId}" is not running`, { adapter: 'process', vm: vmId, power: 'off' })
    }
    return guest.quiesce(timeout)
  }

  async unquiesce(vmId: string): Promise<void> {
    await this.#enter('unquiesce')
    await this.#vms.get(vmId)?.guest?.unquiesce(this.#controlTimeoutMs)
  }

  async listActors(volume: string): Promise<readonly IoActor[]> {
    await this.#enter('listActors')
    const actors: IoActor[] = []
    for (const vm of this.#vms.values()) {
      const guest = vm.guest
      if (guest === undefined || !guest.running || !vm.spec.disks.some((disk) => disk.volume === volume)) continue
      const volumes = [...new Set(vm.spec.disks.map((disk) => disk.volume))]
      actors.push({ id: vm.spec.id, kind: 'vm', volumes, frozen: guest.group.frozen, pid: guest.group.pid })
    }
    actors.push(...this.#actors.list(volume))
    return actors.sort((a, b) => byName(a.id, b.id))
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
    return this.#mounts.mount(input).catch((error: unknown) => {
      throw adapterError('process', 'mount', error)
    })
  }

  async dismount(mountPath: string, token: FenceToken): Promise<void> {
    await this.#enter('dismount')
    const key = decode(t.string, mountPath, 'mount path')
    await this.#fence(token, 'dismount')
    await this.#mounts.dismount(key).catch((error: unknown) => {
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
    const closed = this.#closedError('close')
    const stopping: Array<Promise<unknown>> = []
    for (const vm of this.#vms.values()) {
      vm.guest?.abandon(closed)
      if (vm.guest !== undefined) stopping.push(vm.guest.stop(this.#stopGraceMs))
    }
    for (const group of this.#actors.groups()) stopping.push(group.stop(this.#clock, this.#stopGraceMs))
    for (const hook of this.#hooks) stopping.push(hook.stop(this.#clock, this.#stopGraceMs))
    await Promise.all(stopping)
    await Promise.all([...this.#vmQueues.values()])
    await this.#ready.catch(() => undefined)
    await this.#mounts.settled()
  }

  /** Checks `token` and, when it raised the highest token of its scope, saves the new highest durably. */
  async #fence(token: FenceToken, operation: string): Promise<void> {
    const before = this.#guard.highest(token?.scope)
    this.#guard.check(token, operation)
    if (this.#guard.highest(token.scope) === before) return
    await this.#mounts.saveFences().catch((error: unknown) => {
      throw adapterError('process', operation, error)
    })
  }

  /** Runs power changes of one VM one at a time. */
  #serially(vmId: string, run: () => Promise<void>): Promise<void> {
    const result = (this.#vmQueues.get(vmId) ?? Promise.resolve()).then(run)
    const settled = result.catch(() => undefined)
    this.#vmQueues.set(vmId, settled)
    void settled.then(() => {
      if (this.#vmQueues.get(vmId) === settled) this.#vmQueues.delete(vmId)
    })
    return result
  }

  #actorGroup(actorId: string): ProcessGroup {
    const guest = this.#vms.get(actorId)?.guest
    if (guest !== undefined && guest.running) return guest.group
    const group = this.#actors.group(actorId)
    if (group !== undefined) return group
    throw new DrError('E_NOT_FOUND', `process host: no running actor "${actorId}"`, { adapter: 'process', actor: actorId })
  }

  #vm(vmId: string): VmRecord {
    const vm = this.#vms.get(vmId)
    if (vm === undefined) throw new DrError('E_NOT_FOUND', `process host: no VM "${vmId}"`, { adapter: 'process', vm: vmId })
    return vm
  }

  #hostInfo(host: string): HostInfo {
    const allocations: Allocation[] = [...this.#vms.values()].map((vm) => ({ host: vm.host, cpus: vm.spec.cpus, memoryMb: vm.spec.memoryMb }))
    return this.#hosts.info(host, allocations)
  }

  #vmInfo(vm: VmRecord): VmInfo {
    return structuredClone({ ...vm.spec, host: vm.host, power: vm.guest?.running === true ? 'running' : 'off' })
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
 * registry under `workDir`.
 *
 * @example
 * ```ts
 * const host = processHost({ workDir: './host-state', hosts: [{ name: 'node-1', cpus: 8, memoryMb: 16384 }] })
 * ```
 * @public
 */
export function processHost(options: ProcessHostOptions): ProcessHost {
  return new ProcessHost(options)
}

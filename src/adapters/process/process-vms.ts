import { DrError, adapterError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { HostInfo, IoActor, QuiesceResult, VmInfo, VmSpec } from '../../ports/host.js'
import { IdempotencyKeys } from '../memory/host-idempotency.js'
import type { DiskSync } from './disk-sync.js'
import type { Allocation } from './host-inventory.js'
import type { VmRegistryState } from './mount-table.js'
import { ensurePath, hostPath } from './mount-table.js'
import type { ProcessGroup } from './process-group.js'
import { RunningGuest, type GuestDisk } from './running-guest.js'
import type { GuestCommand } from './types.js'

/** How many idempotency keys of each operation a process host keeps (and persists). */
const KEYS_KEPT = 1024

interface VmRecord {
  readonly spec: VmSpec
  readonly host: string
  guest: RunningGuest | undefined
}

/** What the VMs of a process host need from it. */
export interface ProcessVmsDeps {
  readonly clock: Clock
  readonly guest: GuestCommand
  readonly rootDir: string
  readonly stopGraceMs: number
  readonly controlTimeoutMs: number
  /** Host `name` as it is now (with every registered VM's allocation); `E_NOT_FOUND` if unknown. */
  readonly hostInfo: (name: string) => HostInfo
  /** The disk layer (when the host was given `disks`): a VM's disk volumes materialised at its disk paths. */
  readonly disks: DiskSync | undefined
  /** The newest fence token the host accepted (what a quiesce flushes the disks with). */
  readonly latestToken: () => FenceToken | undefined
  /** Saves the registry (VMs and keys included). */
  readonly persist: () => Promise<void>
  readonly closing: AbortSignal
  readonly closedError: (operation: string) => DrError
}

function byId(a: VmRecord, b: VmRecord): number {
  return a.spec.id < b.spec.id ? -1 : a.spec.id > b.spec.id ? 1 : 0
}

/**
 * The VMs of a process host: registration (persisted with the idempotency keys of the calls that acted), power
 * (a guest process per running VM; with a disk layer, the disks are materialised before it starts and flushed
 * after it stops), quiesce (a JSON-line request the guest acknowledges; with a disk layer, the disks are flushed
 * once the guest holds its writes) and the VMs as I/O actors.
 */
export class ProcessVms {
  readonly #deps: ProcessVmsDeps
  readonly #vms = new Map<string, VmRecord>()
  readonly #queues = new Map<string, Promise<void>>()
  #registered = new IdempotencyKeys<VmInfo>(KEYS_KEPT)
  #started = new IdempotencyKeys<true>(KEYS_KEPT)

  constructor(deps: ProcessVmsDeps) {
    this.#deps = deps
  }

  /** Restores what the registry held: the VMs (off: their guests did not survive) and the keys. */
  load(state: VmRegistryState): void {
    for (const vm of state.vms) this.#vms.set(vm.spec.id, { spec: structuredClone(vm.spec), host: vm.host, guest: undefined })
    this.#registered = new IdempotencyKeys(KEYS_KEPT, state.registered)
    this.#started = new IdempotencyKeys(KEYS_KEPT, state.started.map((key) => [key, true] as const))
  }

  /** What the registry keeps of the VMs. */
  snapshot(): VmRegistryState {
    return {
      vms: [...this.#vms.values()].sort(byId).map((vm) => ({ spec: vm.spec, host: vm.host })),
      registered: this.#registered.entries(),
      started: this.#started.entries().map(([key]) => key),
    }
  }

  /** True when a VM of that id is registered. */
  has(vmId: string): boolean {
    return this.#vms.has(vmId)
  }

  /** What every registered VM takes from its host. */
  allocations(): Allocation[] {
    return [...this.#vms.values()].map((vm) => ({ host: vm.host, cpus: vm.spec.cpus, memoryMb: vm.spec.memoryMb }))
  }

  /** Registers `spec` on `host` (see `HostPort.registerVm`); `isActor` tells whether an actor has the id. */
  async register(host: string, spec: VmSpec, key: string | undefined, isActor: (id: string) => boolean): Promise<VmInfo> {
    const done = this.#registered.recall(key)
    if (done !== undefined) return this.get(done.id) ?? structuredClone(done)
    const record = this.#deps.hostInfo(host)
    if (this.#vms.has(spec.id) || isActor(spec.id)) {
      throw new DrError('E_CONFLICT', `process host: VM "${spec.id}" is registered already`, { adapter: 'process', vm: spec.id })
    }
    if (!record.online) throw new DrError('E_PRECONDITION', `process host: host "${host}" is offline`, { adapter: 'process', host, vm: spec.id })
    if (record.allocatedCpus + spec.cpus > record.cpus || record.allocatedMemoryMb + spec.memoryMb > record.memoryMb) {
      throw new DrError('E_PRECONDITION', `process host: host "${host}" lacks the CPU or memory for VM "${spec.id}"`, {
        adapter: 'process',
        host,
        vm: spec.id,
        freeCpus: record.cpus - record.allocatedCpus,
        freeMemoryMb: record.memoryMb - record.allocatedMemoryMb,
      })
    }
    const vm: VmRecord = { spec: structuredClone(spec), host, guest: undefined }
    this.#vms.set(spec.id, vm)
    this.#registered.record(key, this.#info(vm))
    await this.#persist('registerVm').catch((error: unknown) => {
      if (this.#vms.get(spec.id) === vm) this.#vms.delete(spec.id)
      this.#registered.forget(key)
      throw error
    })
    return this.#info(vm)
  }

  /** Unregisters a VM that is off (`E_PRECONDITION` while it runs). */
  async unregister(vmId: string): Promise<void> {
    const vm = this.#vm(vmId)
    await this.#serially(vmId, async () => {
      if (vm.guest?.running === true) {
        throw new DrError('E_PRECONDITION', `process host: VM "${vmId}" is running; power it off first`, { adapter: 'process', vm: vmId })
      }
      if (this.#vms.get(vmId) === vm) this.#vms.delete(vmId)
      await this.#persist('unregisterVm')
    })
  }

  /** A registered VM, or undefined. */
  get(vmId: string): VmInfo | undefined {
    const vm = this.#vms.get(vmId)
    return vm === undefined ? undefined : this.#info(vm)
  }

  /** Registered VMs, optionally only those on `host`, sorted by id. */
  list(host?: string): VmInfo[] {
    return [...this.#vms.values()]
      .filter((vm) => host === undefined || vm.host === host)
      .sort(byId)
      .map((vm) => this.#info(vm))
  }

  /** Starts the VM's guest (its disks materialised first); a repeat of a keyed power-on that succeeded does nothing. */
  async powerOn(vmId: string, key: string | undefined): Promise<void> {
    if (this.#started.recall(key) !== undefined) return
    const vm = this.#vm(vmId)
    await this.#serially(vmId, async () => {
      if (vm.guest?.running !== true) await this.#start(vm)
      this.#started.record(key, true)
      if (key !== undefined) await this.#persist('powerOn')
    })
  }

  /** Stops the VM's guest (SIGTERM, then SIGKILL) and flushes its disks into their volumes. Idempotent. */
  async powerOff(vmId: string, token: FenceToken): Promise<void> {
    const vm = this.#vm(vmId)
    await this.#serially(vmId, async () => {
      await vm.guest?.stop(this.#deps.stopGraceMs)
      vm.guest = undefined
      await this.#flush(vm, token, 'powerOff')
    })
  }

  /**
   * Asks the guest to hold its writes (see `RunningGuest.quiesce`); with a disk layer, its disks are then flushed
   * into their volumes — also when the guest does not answer in time (crash-consistent), before `E_TIMEOUT`.
   */
  async quiesce(vmId: string, timeoutMs: number): Promise<QuiesceResult> {
    const vm = this.#vm(vmId)
    const guest = vm.guest
    if (guest === undefined || !guest.running) {
      throw new DrError('E_PRECONDITION', `process host: VM "${vmId}" is not running`, { adapter: 'process', vm: vmId, power: 'off' })
    }
    const token = this.#deps.latestToken()
    let result: QuiesceResult
    try {
      result = await guest.quiesce(timeoutMs)
    } catch (error) {
      if (error instanceof DrError && error.code === 'E_TIMEOUT' && token !== undefined) await this.#flush(vm, token, 'quiesce')
      throw error
    }
    if (token !== undefined) await this.#flush(vm, token, 'quiesce')
    return result
  }

  /** Releases a quiesce (idempotent). */
  async unquiesce(vmId: string): Promise<void> {
    await this.#vms.get(vmId)?.guest?.unquiesce(this.#deps.controlTimeoutMs)
  }

  /** The running VMs with a disk on `volume`, as I/O actors. */
  actors(volume: string): IoActor[] {
    const actors: IoActor[] = []
    for (const vm of this.#vms.values()) {
      const guest = vm.guest
      if (guest === undefined || !guest.running || !vm.spec.disks.some((disk) => disk.volume === volume)) continue
      const volumes = [...new Set(vm.spec.disks.map((disk) => disk.volume))]
      actors.push({ id: vm.spec.id, kind: 'vm', volumes, frozen: guest.group.frozen, pid: guest.group.pid })
    }
    return actors
  }

  /** The process group of VM `vmId`'s running guest, if any. */
  group(vmId: string): ProcessGroup | undefined {
    const guest = this.#vms.get(vmId)?.guest
    return guest !== undefined && guest.running ? guest.group : undefined
  }

  /** Stops every guest (the host is closing) and waits for every power change under way. */
  async stopAll(closed: DrError): Promise<void> {
    const stopping: Array<Promise<unknown>> = []
    for (const vm of this.#vms.values()) {
      vm.guest?.abandon(closed)
      if (vm.guest !== undefined) stopping.push(vm.guest.stop(this.#deps.stopGraceMs))
    }
    await Promise.all(stopping)
    await Promise.all([...this.#queues.values()])
  }

  async #start(vm: VmRecord): Promise<void> {
    if (!this.#deps.hostInfo(vm.host).online) {
      throw new DrError('E_PRECONDITION', `process host: host "${vm.host}" of VM "${vm.spec.id}" is offline`, { adapter: 'process', vm: vm.spec.id, host: vm.host })
    }
    const disks: GuestDisk[] = vm.spec.disks.map((disk) => ({ ...disk, path: hostPath(this.#deps.rootDir, disk.mountPath) }))
    try {
      for (const disk of disks) {
        if (this.#deps.disks === undefined) await ensurePath(disk.path)
        else await this.#deps.disks.materialise(disk.volume, disk.path)
      }
      vm.guest = await RunningGuest.start(vm.spec, vm.host, disks, this.#deps.guest, this.#deps.clock)
    } catch (error) {
      throw adapterError('process', 'powerOn', error)
    }
    if (this.#deps.closing.aborted) {
      await vm.guest.stop(this.#deps.stopGraceMs)
      throw this.#deps.closedError('powerOn')
    }
  }

  async #flush(vm: VmRecord, token: FenceToken, operation: string): Promise<void> {
    const disks = this.#deps.disks
    if (disks === undefined) return
    for (const disk of vm.spec.disks) {
      await disks.flush(disk.volume, hostPath(this.#deps.rootDir, disk.mountPath), token).catch((error: unknown) => {
        throw adapterError('process', operation, error)
      })
    }
  }

  async #persist(operation: string): Promise<void> {
    await this.#deps.persist().catch((error: unknown) => {
      throw adapterError('process', operation, error)
    })
  }

  /** Runs power changes of one VM one at a time. */
  #serially(vmId: string, run: () => Promise<void>): Promise<void> {
    const result = (this.#queues.get(vmId) ?? Promise.resolve()).then(run)
    const settled = result.catch(() => undefined)
    this.#queues.set(vmId, settled)
    void settled.then(() => {
      if (this.#queues.get(vmId) === settled) this.#queues.delete(vmId)
    })
    return result
  }

  #vm(vmId: string): VmRecord {
    const vm = this.#vms.get(vmId)
    if (vm === undefined) throw new DrError('E_NOT_FOUND', `process host: no VM "${vmId}"`, { adapter: 'process', vm: vmId })
    return vm
  }

  #info(vm: VmRecord): VmInfo {
    return structuredClone({ ...vm.spec, host: vm.host, power: vm.guest?.running === true ? 'running' : 'off' })
  }
}

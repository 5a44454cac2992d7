import * as t from 'io-ts'
import { DrError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { NonNegativeInt } from '../../kernel/codecs.js'
import { systemClock, type Clock } from '../../kernel/clock.js'
import { FenceGuard, type FenceToken } from '../../kernel/fencing.js'
import type {
  HookRequest,
  HookResult,
  HostCallOptions,
  HostInfo,
  HostPolicies,
  HostPort,
  IoActor,
  MountInfo,
  PowerState,
  QuiesceResult,
  VmInfo,
  VmSpec,
} from '../../ports/host.js'
import { ActorDefinitionCodec, QuiesceBehaviourCodec } from './host-codecs.js'
import { HookRequestCodec, HostCallOptionsCodec, HostDefinitionCodec, MountInfoCodec, VmSpecCodec, type HostDefinition } from '../../ports/host-codecs.js'
import { runHookHandler } from './host-hook.js'
import { IdempotencyKeys } from './host-idempotency.js'
import type { ActorDefinition, HookHandler, MemoryHostOptions, QuiesceBehaviour } from './host-types.js'

export type { ActorDefinition, HookHandler, MemoryHostOptions, QuiesceBehaviour } from './host-types.js'

interface HostRecord {
  readonly name: string
  online: boolean
  readonly cpus: number
  readonly memoryMb: number
  readonly tags: readonly string[]
  readonly policies: HostPolicies | undefined
}

interface VmRecord {
  readonly spec: VmSpec
  readonly host: string
  power: PowerState
  quiesced: boolean
}

interface ActorRecord {
  readonly definition: ActorDefinition
  frozen: boolean
}

/** The writer a memory VM reports when it quiesces. */
const MEMORY_WRITER = 'memory-writer'

/** How many idempotency keys a memory host remembers. */
const KEYS_KEPT = 4096

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * A `HostPort` of kind `memory` with real behaviour and no side effects, for tests and examples: hosts with
 * capacity, VMs with capacity accounting and power state, quiesce, I/O actors, mounts and hooks (a registered
 * {@link HookHandler} stands in for the script). Every mutating call checks its fence token; returned objects
 * are copies. Beyond the port it has test controls: add hosts, take them down, choose how a VM quiesces, place
 * actors and handle hooks. Build one with {@link memoryHost}.
 *
 * @public
 */
export class MemoryHost implements HostPort {
  readonly kind = 'memory'
  readonly #clock: Clock
  readonly #latencyMs: number
  readonly #guard = new FenceGuard('memory.host')
  readonly #closing = new AbortController()
  readonly #hosts = new Map<string, HostRecord>()
  readonly #vms = new Map<string, VmRecord>()
  readonly #behaviours = new Map<string, QuiesceBehaviour>()
  readonly #actors = new Map<string, ActorRecord>()
  readonly #mounts = new Map<string, MountInfo>()
  readonly #registered = new IdempotencyKeys<VmInfo>(KEYS_KEPT)
  readonly #started = new IdempotencyKeys<true>(KEYS_KEPT)
  #hookHandler: HookHandler = () => ({ exitCode: 0, stdout: '', stderr: '', timedOut: false })

  constructor(options: MemoryHostOptions = {}) {
    const latencyMs = options.latencyMs ?? 0
    if (!(Number.isFinite(latencyMs) && latencyMs >= 0)) {
      throw new DrError('E_INVALID_INPUT', `memory host: latencyMs must be a non-negative number, got ${latencyMs}`, { latencyMs })
    }
    this.#clock = options.clock ?? systemClock
    this.#latencyMs = latencyMs
    for (const host of options.hosts ?? []) this.addHost(host)
  }

  /** Adds a host (test control). `E_CONFLICT` if a host of that name exists. */
  addHost(definition: HostDefinition): void {
    const input = decode(HostDefinitionCodec, definition, 'host definition')
    if (this.#hosts.has(input.name)) {
      throw new DrError('E_CONFLICT', `memory host: host "${input.name}" exists already`, { host: input.name })
    }
    this.#hosts.set(input.name, {
      name: input.name,
      online: input.online ?? true,
      cpus: input.cpus,
      memoryMb: input.memoryMb,
      tags: [...(input.tags ?? [])],
      policies: input.policies === undefined ? undefined : { ...input.policies },
    })
  }

  /** Takes a host down or brings it up (test control). A host going down powers its VMs off. */
  setHostOnline(name: string, online: boolean): void {
    const host = this.#host(name)
    host.online = online
    if (online) return
    for (const vm of this.#vms.values()) {
      if (vm.host !== name) continue
      vm.power = 'off'
      vm.quiesced = false
    }
  }

  /** Chooses how VM `vmId` answers later quiesce requests (test control; default `ok`). */
  setQuiesceBehaviour(vmId: string, behaviour: QuiesceBehaviour): void {
    this.#behaviours.set(vmId, decode(QuiesceBehaviourCodec, behaviour, 'quiesce behaviour'))
  }

  /** True while VM `vmId` is quiesced (test control, to check that callers always unquiesce). */
  isQuiesced(vmId: string): boolean {
    return this.#vms.get(vmId)?.quiesced ?? false
  }

  /** Places an I/O actor, not frozen (test control). `E_CONFLICT` if the id is taken. */
  addActor(definition: ActorDefinition): void {
    const input = decode(ActorDefinitionCodec, definition, 'actor definition')
    if (this.#actors.has(input.id)) {
      throw new DrError('E_CONFLICT', `memory host: actor "${input.id}" exists already`, { actor: input.id })
    }
    const base = { id: input.id, kind: input.kind, volumes: [...input.volumes] }
    this.#actors.set(input.id, { definition: input.pid === undefined ? base : { ...base, pid: input.pid }, frozen: false })
  }

  /** Removes an I/O actor (test control; idempotent). */
  removeActor(id: string): void {
    this.#actors.delete(id)
  }

  /** Sets what hooks do instead of running a script (test control; default: exit code 0, no output). */
  setHookHandler(handler: HookHandler): void {
    this.#hookHandler = handler
  }

  async listHosts(): Promise<readonly HostInfo[]> {
    await this.#enter('listHosts')
    return [...this.#hosts.keys()].sort(byName).map((name) => this.#hostInfo(this.#host(name)))
  }

  async hostInfo(host: string): Promise<HostInfo> {
    await this.#enter('hostInfo')
    return this.#hostInfo(this.#host(host))
  }

  async registerVm(host: string, spec: VmSpec, token: FenceToken, options: HostCallOptions = {}): Promise<VmInfo> {
    await this.#enter('registerVm')
    const input = decode(VmSpecCodec, spec, 'VM spec')
    const key = decode(HostCallOptionsCodec, options, 'registerVm options').idempotencyKey
    this.#guard.check(token, 'registerVm')
    const done = this.#registered.recall(key)
    if (done !== undefined) return this.#vms.has(done.id) ? this.#vmInfo(this.#vm(done.id)) : structuredClone(done)
    const record = this.#host(host)
    if (this.#vms.has(input.id)) {
      throw new DrError('E_CONFLICT', `memory host: VM "${input.id}" is registered already`, { vm: input.id })
    }
    if (!record.online) {
      throw new DrError('E_PRECONDITION', `memory host: host "${host}" is offline`, { host, vm: input.id })
    }
    const free = this.#hostInfo(record)
    if (free.allocatedCpus + input.cpus > record.cpus || free.allocatedMemoryMb + input.memoryMb > record.memoryMb) {
      throw new DrError('E_PRECONDITION', `memory host: host "${host}" lacks the CPU or memory for VM "${input.id}"`, {
        host,
        vm: input.id,
        freeCpus: record.cpus - free.allocatedCpus,
        freeMemoryMb: record.memoryMb - free.allocatedMemoryMb,
        cpus: input.cpus,
        memoryMb: input.memoryMb,
      })
    }
    const { id, name, cpus, memoryMb, disks, networks, tags, config } = input
    const copy: VmSpec = { id, name, cpus, memoryMb, disks: disks.map((d) => ({ volume: d.volume, mountPath: d.mountPath })), networks: [...networks], tags: [...tags], config: structuredClone(config) }
    const vm: VmRecord = { spec: copy, host, power: 'off', quiesced: false }
    this.#vms.set(input.id, vm)
    this.#registered.record(key, this.#vmInfo(vm))
    return this.#vmInfo(vm)
  }

  async unregisterVm(vmId: string, token: FenceToken): Promise<void> {
    await this.#enter('unregisterVm')
    this.#guard.check(token, 'unregisterVm')
    if (this.#vm(vmId).power === 'running') {
      throw new DrError('E_PRECONDITION', `memory host: VM "${vmId}" is running; power it off first`, { vm: vmId })
    }
    this.#vms.delete(vmId)
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

  async powerOn(vmId: string, token: FenceToken, options: HostCallOptions = {}): Promise<void> {
    await this.#enter('powerOn')
    const key = decode(HostCallOptionsCodec, options, 'powerOn options').idempotencyKey
    this.#guard.check(token, 'powerOn')
    if (this.#started.recall(key) !== undefined) return
    const vm = this.#vm(vmId)
    if (!this.#host(vm.host).online) {
      throw new DrError('E_PRECONDITION', `memory host: host "${vm.host}" of VM "${vmId}" is offline`, { vm: vmId, host: vm.host })
    }
    vm.power = 'running'
    this.#started.record(key, true)
  }

  async powerOff(vmId: string, token: FenceToken): Promise<void> {
    await this.#enter('powerOff')
    this.#guard.check(token, 'powerOff')
    const vm = this.#vm(vmId)
    vm.power = 'off'
    vm.quiesced = false
  }

  async quiesce(vmId: string, timeoutMs: number): Promise<QuiesceResult> {
    await this.#enter('quiesce')
    const timeout = decode(NonNegativeInt, timeoutMs, 'quiesce timeoutMs')
    const vm = this.#vm(vmId)
    if (vm.power !== 'running') {
      throw new DrError('E_PRECONDITION', `memory host: VM "${vmId}" is not running`, { vm: vmId, power: vm.power })
    }
    const behaviour = this.#behaviours.get(vmId) ?? 'ok'
    if (behaviour === 'fail') return { vmId, applicationConsistent: false, writers: [] }
    if (behaviour === 'hang') {
      await this.#wait(timeout, 'quiesce')
      throw new DrError('E_TIMEOUT', `memory host: VM "${vmId}" did not quiesce within ${timeout} ms`, { vm: vmId, timeoutMs: timeout })
    }
    vm.quiesced = true
    return { vmId, applicationConsistent: true, writers: [MEMORY_WRITER] }
  }

  async unquiesce(vmId: string): Promise<void> {
    await this.#enter('unquiesce')
    const vm = this.#vms.get(vmId)
    if (vm !== undefined) vm.quiesced = false
  }

  async hostPolicies(host: string): Promise<HostPolicies | undefined> {
    await this.#enter('hostPolicies')
    const policies = this.#host(host).policies
    return policies === undefined ? undefined : { ...policies }
  }

  async listActors(volume: string): Promise<readonly IoActor[]> {
    await this.#enter('listActors')
    return [...this.#actors.values()]
      .filter((actor) => actor.definition.volumes.includes(volume))
      .sort((a, b) => byName(a.definition.id, b.definition.id))
      .map((actor) => ({ ...actor.definition, volumes: [...actor.definition.volumes], frozen: actor.frozen }))
  }

  async freezeActor(actorId: string, token: FenceToken): Promise<void> {
    await this.#setFrozen('freezeActor', actorId, token, true)
  }

  async thawActor(actorId: string, token: FenceToken): Promise<void> {
    await this.#setFrozen('thawActor', actorId, token, false)
  }

  async mount(mount: MountInfo, token: FenceToken): Promise<MountInfo> {
    await this.#enter('mount')
    const input = decode(MountInfoCodec, mount, 'mount')
    if (input.path === '') throw new DrError('E_INVALID_INPUT', 'memory host: a mount path must not be empty', { field: 'path' })
    this.#guard.check(token, 'mount')
    const taken = this.#mounts.get(input.path)
    if (taken !== undefined) {
      throw new DrError('E_CONFLICT', `memory host: "${input.path}" is taken by volume "${taken.volume}"`, {
        path: input.path,
        volume: taken.volume,
      })
    }
    const record: MountInfo = {
      path: input.path,
      volume: input.volume,
      identity: input.identity,
      options: { ...input.options },
      readOnly: input.readOnly,
    }
    this.#mounts.set(input.path, record)
    return { ...record, options: { ...record.options } }
  }

  async dismount(path: string, token: FenceToken): Promise<void> {
    await this.#enter('dismount')
    const key = decode(t.string, path, 'mount path')
    this.#guard.check(token, 'dismount')
    this.#mounts.delete(key)
  }

  async getMount(path: string): Promise<MountInfo | undefined> {
    await this.#enter('getMount')
    const mount = this.#mounts.get(path)
    return mount === undefined ? undefined : { ...mount, options: { ...mount.options } }
  }

  async listMounts(): Promise<readonly MountInfo[]> {
    await this.#enter('listMounts')
    return [...this.#mounts.values()]
      .sort((a, b) => byName(a.path, b.path))
      .map((mount) => ({ ...mount, options: { ...mount.options } }))
  }

  async runHook(request: HookRequest): Promise<HookResult> {
    await this.#enter('runHook')
    const input = decode(HookRequestCodec, request, 'hook request')
    return runHookHandler(
      this.#hookHandler,
      { script: input.script, args: [...input.args], env: { ...input.env }, timeoutMs: input.timeoutMs },
      this.#clock,
      this.#closing.signal,
      () => this.#closedError('runHook'),
    )
  }

  async close(): Promise<void> {
    this.#closing.abort()
  }

  async presentToken(token: FenceToken): Promise<void> {
    await this.#enter('presentToken')
    this.#guard.check(token, 'presentToken')
  }

  async #setFrozen(operation: string, actorId: string, token: FenceToken, frozen: boolean): Promise<void> {
    await this.#enter(operation)
    this.#guard.check(token, operation)
    const actor = this.#actors.get(actorId)
    if (actor === undefined) throw new DrError('E_NOT_FOUND', `memory host: no actor "${actorId}"`, { actor: actorId })
    actor.frozen = frozen
  }

  #host(name: string): HostRecord {
    const host = this.#hosts.get(name)
    if (host === undefined) throw new DrError('E_NOT_FOUND', `memory host: no host "${name}"`, { host: name })
    return host
  }

  #vm(vmId: string): VmRecord {
    const vm = this.#vms.get(vmId)
    if (vm === undefined) throw new DrError('E_NOT_FOUND', `memory host: no VM "${vmId}"`, { vm: vmId })
    return vm
  }

  #hostInfo(host: HostRecord): HostInfo {
    let allocatedCpus = 0
    let allocatedMemoryMb = 0
    for (const vm of this.#vms.values()) {
      if (vm.host !== host.name) continue
      allocatedCpus += vm.spec.cpus
      allocatedMemoryMb += vm.spec.memoryMb
    }
    return { name: host.name, online: host.online, cpus: host.cpus, memoryMb: host.memoryMb, tags: [...host.tags], allocatedCpus, allocatedMemoryMb }
  }

  #vmInfo(vm: VmRecord): VmInfo {
    return structuredClone({ ...vm.spec, host: vm.host, power: vm.power })
  }

  /** Fails once the host is closed, then waits out the simulated call latency. */
  async #enter(operation: string): Promise<void> {
    if (this.#closing.signal.aborted) throw this.#closedError(operation)
    if (this.#latencyMs > 0) await this.#wait(this.#latencyMs, operation)
  }

  /** Sleeps on the clock; `E_CLOSED` if the host closes meanwhile. */
  async #wait(ms: number, operation: string): Promise<void> {
    try {
      await this.#clock.sleep(ms, this.#closing.signal)
    } catch {
      throw this.#closedError(operation)
    }
  }

  #closedError(operation: string): DrError {
    return new DrError('E_CLOSED', `memory.host.${operation}: the host adapter is closed`, { adapter: 'memory', operation })
  }
}

/**
 * Creates an in-memory `HostPort` (with test controls) for tests, examples and benchmarks.
 *
 * @example
 * ```ts
 * const host = memoryHost({ hosts: [{ name: 'esx-1', cpus: 16, memoryMb: 65536 }], latencyMs: 20 })
 * ```
 * @public
 */
export function memoryHost(options: MemoryHostOptions = {}): MemoryHost {
  return new MemoryHost(options)
}

import type { FenceToken } from '../kernel/fencing.js'
import type { Json } from '../kernel/codecs.js'

/**
 * A host that can run VMs: its capacity, what is allocated to registered VMs and whether it is up.
 *
 * @public
 */
export interface HostInfo {
  readonly name: string
  readonly online: boolean
  readonly cpus: number
  readonly memoryMb: number
  readonly allocatedCpus: number
  readonly allocatedMemoryMb: number
  readonly tags: readonly string[]
}

/**
 * A disk of a VM: the volume that holds it and where the VM sees it.
 *
 * @public
 */
export interface VmDisk {
  readonly volume: string
  readonly mountPath: string
}

/**
 * What a VM is: identity, sizing, disks, networks and any configuration the embedder keeps with it.
 *
 * @public
 */
export interface VmSpec {
  readonly id: string
  readonly name: string
  readonly cpus: number
  readonly memoryMb: number
  readonly disks: readonly VmDisk[]
  readonly networks: readonly string[]
  readonly tags: readonly string[]
  readonly config: Json
}

/**
 * Power state of a VM.
 *
 * @public
 */
export type PowerState = 'running' | 'off'

/**
 * A registered VM: its spec, the host it is registered on and its power state.
 *
 * @public
 */
export interface VmInfo extends VmSpec {
  readonly host: string
  readonly power: PowerState
}

/**
 * The outcome of asking a VM's applications to quiesce (VSS-like): whether the result is application-consistent
 * and which writers took part.
 *
 * @public
 */
export interface QuiesceResult {
  readonly vmId: string
  readonly applicationConsistent: boolean
  readonly writers: readonly string[]
}

/**
 * Something doing I/O to a volume that can be frozen and thawed: a process or a VM.
 *
 * @public
 */
export interface IoActor {
  readonly id: string
  readonly kind: 'process' | 'vm'
  readonly volumes: readonly string[]
  readonly frozen: boolean
  readonly pid?: number
}

/**
 * A mounted volume as a host presents it: path, the volume's identity (stable across restores), options.
 *
 * @public
 */
export interface MountInfo {
  readonly path: string
  readonly volume: string
  readonly identity: string
  readonly options: Readonly<Record<string, string>>
  readonly readOnly: boolean
}

/**
 * Options of a VM call that acts (`registerVm`, `powerOn`): an idempotency key. A call repeated with the key of
 * one that succeeded does not act again (a retry after a lost reply or `E_TIMEOUT` registers or starts nothing
 * twice); adapters remember recent keys.
 *
 * @public
 */
export interface HostCallOptions {
  readonly idempotencyKey?: string
}

/**
 * The protection policies a host's data protection agent reports for the VMs it runs: how often they are backed
 * up and how often the backups are replicated (note 003 ¶0027: a DR plan may be built from them).
 *
 * @public
 */
export interface HostPolicies {
  readonly backupEveryMs: number
  readonly replicateEveryMs: number
}

/**
 * A user hook script to run with a context (failover pre/post hooks and the like).
 *
 * @public
 */
export interface HookRequest {
  readonly script: string
  readonly args: readonly string[]
  readonly env: Readonly<Record<string, string>>
  readonly timeoutMs: number
}

/**
 * What a hook script did: its exit code (null when it was killed), output, and whether it ran out of time.
 *
 * @public
 */
export interface HookResult {
  readonly exitCode: number | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
}

/**
 * The host port of a site: hosts and their capacity, VMs (register, power, quiesce), I/O actors that can be
 * frozen, mounts, and user hook scripts. Mutating calls take a {@link FenceToken}.
 *
 * @public
 */
export interface HostPort {
  /** Adapter name for errors (`memory`, `process`…). */
  readonly kind: string

  /** Every host of the site, sorted by name. */
  listHosts(): Promise<readonly HostInfo[]>
  /** One host; `E_NOT_FOUND` if unknown. */
  hostInfo(host: string): Promise<HostInfo>

  /**
   * Registers a VM on `host` (powered off). `E_CONFLICT` if the id is registered already; `E_PRECONDITION` if the
   * host is offline or lacks the CPU or memory. Repeated with the idempotency key of a registration that
   * succeeded, it registers nothing and resolves with the VM as it is now (or as that registration left it).
   */
  registerVm(host: string, spec: VmSpec, token: FenceToken, options?: HostCallOptions): Promise<VmInfo>
  /** Unregisters a powered-off VM (`E_PRECONDITION` while running). */
  unregisterVm(vmId: string, token: FenceToken): Promise<void>
  /** A registered VM, or undefined. */
  getVm(vmId: string): Promise<VmInfo | undefined>
  /** Registered VMs, optionally only those on `host`, sorted by id. */
  listVms(host?: string): Promise<readonly VmInfo[]>
  /**
   * Powers a VM on (idempotent) and resolves once it runs; `E_PRECONDITION` if its host is offline. Repeated with
   * the idempotency key of a power-on that succeeded, it does nothing (also if the VM was powered off since).
   */
  powerOn(vmId: string, token: FenceToken, options?: HostCallOptions): Promise<void>
  /** Powers a VM off (idempotent). */
  powerOff(vmId: string, token: FenceToken): Promise<void>
  /**
   * Asks the VM's applications to flush and hold their writes. Rejects with `E_TIMEOUT` after `timeoutMs`
   * (the VM is then left unquiesced) and `E_PRECONDITION` if the VM is not running.
   */
  quiesce(vmId: string, timeoutMs: number): Promise<QuiesceResult>
  /** Releases a quiesce (idempotent; always safe to call). */
  unquiesce(vmId: string): Promise<void>

  /** The actors currently doing I/O to `volume`. */
  listActors(volume: string): Promise<readonly IoActor[]>
  /** Suspends an actor's I/O (idempotent). */
  freezeActor(actorId: string, token: FenceToken): Promise<void>
  /** Resumes an actor (idempotent). */
  thawActor(actorId: string, token: FenceToken): Promise<void>

  /** Mounts `volume` at `path` with `identity` and options. `E_CONFLICT` if the path is taken. */
  mount(mount: MountInfo, token: FenceToken): Promise<MountInfo>
  /** Dismounts whatever is at `path` (idempotent). */
  dismount(path: string, token: FenceToken): Promise<void>
  /** What is mounted at `path`, if anything. */
  getMount(path: string): Promise<MountInfo | undefined>
  /** Every mount, sorted by path. */
  listMounts(): Promise<readonly MountInfo[]>

  /**
   * The protection policies the data protection agent of `host` reports, or undefined when it reports none;
   * `E_NOT_FOUND` if the host is unknown. Optional: an adapter without agents leaves it out.
   */
  hostPolicies?(host: string): Promise<HostPolicies | undefined>

  /** Runs a hook script with a timeout. Never rejects for the script's own failure: see the result. */
  runHook(request: HookRequest): Promise<HookResult>

  /**
   * Raises this adapter's fence floor for `token.scope` to `token.value` and changes nothing else (durably, where
   * the adapter persists its tokens); a stale token rejects with `E_FENCED`. A coordinator that takes over a scope
   * presents its new token on every port at once, so a deposed coordinator is refused everywhere — not only on the
   * resources the new one happens to touch first.
   */
  presentToken(token: FenceToken): Promise<void>

  /** Releases resources (child processes, timers). Later calls reject with `E_CLOSED`; a second `close()` does nothing. */
  close(): Promise<void>
}

import { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { QuiesceResult, VmSpec } from '../../ports/host.js'
import { GuestChannel } from './guest-channel.js'
import { ProcessGroup } from './process-group.js'
import type { GuestCommand } from './types.js'

/** A VM disk as its guest is given it: the volume, the path the VM knows and the path on this machine. */
export interface GuestDisk {
  readonly volume: string
  readonly mountPath: string
  readonly path: string
}

/**
 * The process of a powered-on VM: its process group, the control channel to it and whether it is quiesced.
 * Start one with {@link RunningGuest.start}.
 */
export class RunningGuest {
  readonly group: ProcessGroup
  readonly #channel: GuestChannel
  readonly #clock: Clock
  readonly #vmId: string
  #quiesced: QuiesceResult | undefined
  /** Quiesce requests waiting for their reply. */
  #quiescing = 0
  /** Counts releases, so that a quiesce answered after an unquiesce was asked for does not stay in force. */
  #releases = 0

  private constructor(vmId: string, group: ProcessGroup, clock: Clock) {
    this.#vmId = vmId
    this.group = group
    this.#clock = clock
    this.#channel = new GuestChannel(group.child.stdin, group.child.stdout, clock)
    void group.exited.then(() => {
      this.#quiesced = undefined
      this.#channel.failAll(
        new DrError('E_PRECONDITION', `process host: VM "${vmId}" stopped running`, { adapter: 'process', vm: vmId }),
      )
    })
  }

  /**
   * Spawns the guest of VM `spec`: `command` with the disks' host paths appended to its arguments, and the VM
   * described in its environment (`DRKIT_VM_ID`, `DRKIT_VM_NAME`, `DRKIT_VM_HOST`, `DRKIT_VM_DISKS` as JSON
   * `[{ volume, mountPath, path }]`, `DRKIT_VM_CONFIG` as JSON). Rejects with the spawn error.
   */
  static async start(spec: VmSpec, host: string, disks: readonly GuestDisk[], command: GuestCommand, clock: Clock): Promise<RunningGuest> {
    const group = await ProcessGroup.start({
      command: command.command,
      args: [...command.args, ...disks.map((disk) => disk.path)],
      env: {
        ...process.env,
        DRKIT_VM_ID: spec.id,
        DRKIT_VM_NAME: spec.name,
        DRKIT_VM_HOST: host,
        DRKIT_VM_DISKS: JSON.stringify(disks),
        DRKIT_VM_CONFIG: JSON.stringify(spec.config),
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    })
    return new RunningGuest(spec.id, group, clock)
  }

  /** True until the guest process has exited. */
  get running(): boolean {
    return this.group.running
  }

  /**
   * Asks the guest to flush and hold its writes. A guest that answers `quiesced` holds them until
   * {@link RunningGuest.unquiesce}; asking again while it does answers the same result. With no answer within
   * `timeoutMs` it rejects with `E_TIMEOUT` and tells the guest to unquiesce, so that a late quiesce does not
   * stay in force.
   */
  async quiesce(timeoutMs: number): Promise<QuiesceResult> {
    if (this.#quiesced !== undefined) return copyResult(this.#quiesced)
    const vm = this.#vmId
    const releases = this.#releases
    this.#quiescing += 1
    const reply = await this.#channel
      .request('quiesce', timeoutMs, () =>
        new DrError('E_TIMEOUT', `process host: VM "${vm}" did not quiesce within ${timeoutMs} ms`, {
          adapter: 'process',
          vm,
          timeoutMs,
        }),
      )
      .catch((error: unknown) => {
        if (error instanceof DrError && error.code === 'E_TIMEOUT') this.#channel.notify('unquiesce')
        throw error
      })
      .finally(() => {
        this.#quiescing -= 1
      })
    if (reply.drkit !== 'quiesced') {
      throw new DrError('E_ADAPTER', `process host: VM "${vm}" answered quiesce with ${reply.drkit}`, { adapter: 'process', vm })
    }
    const result: QuiesceResult = { vmId: vm, applicationConsistent: reply.applicationConsistent, writers: [...reply.writers] }
    if (this.#releases === releases) this.#quiesced = result
    return copyResult(result)
  }

  /**
   * Releases a quiesce (also one still waiting for the guest's answer) and waits up to `timeoutMs` for the guest to
   * say its writes flow again (`E_TIMEOUT` otherwise). Does nothing when the guest is neither quiesced nor
   * quiescing, or has stopped.
   */
  async unquiesce(timeoutMs: number): Promise<void> {
    if ((this.#quiesced === undefined && this.#quiescing === 0) || !this.running) return
    this.#quiesced = undefined
    this.#releases += 1
    const vm = this.#vmId
    try {
      await this.#channel.request('unquiesce', timeoutMs, () =>
        new DrError('E_TIMEOUT', `process host: VM "${vm}" did not confirm unquiesce within ${timeoutMs} ms`, {
          adapter: 'process',
          vm,
          timeoutMs,
        }),
      )
    } catch (error) {
      if (this.running) throw error
    }
  }

  /** Rejects every control request still waiting (the host is closing). */
  abandon(error: DrError): void {
    this.#channel.failAll(error)
  }

  /** Ends the guest: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    await this.group.stop(this.#clock, graceMs)
  }
}

function copyResult(result: QuiesceResult): QuiesceResult {
  return { vmId: result.vmId, applicationConsistent: result.applicationConsistent, writers: [...result.writers] }
}

import os from 'node:os'
import { DrError } from '../../kernel/errors.js'
import type { HostInfo, HostPolicies } from '../../ports/host.js'
import type { HostDefinition } from '../../ports/host-codecs.js'

/** What a registered VM takes from its host. */
export interface Allocation {
  readonly host: string
  readonly cpus: number
  readonly memoryMb: number
}

interface HostRecord {
  readonly name: string
  readonly online: boolean
  readonly cpus: number
  readonly memoryMb: number
  readonly tags: readonly string[]
  readonly policies: HostPolicies | undefined
}

/** The host a process host has when it is given none: this machine, its CPUs and its memory. */
function thisMachine(): HostDefinition {
  return { name: 'local', cpus: os.availableParallelism(), memoryMb: Math.floor(os.totalmem() / 1024 / 1024) }
}

/**
 * The logical hosts of a process host and their capacity. What is allocated is worked out from the VMs
 * registered, so it can never drift from them.
 */
export class HostInventory {
  readonly #hosts = new Map<string, HostRecord>()

  /** @param definitions - the hosts (validated already); default: {@link thisMachine} */
  constructor(definitions: readonly HostDefinition[] | undefined) {
    for (const host of definitions ?? [thisMachine()]) {
      if (this.#hosts.has(host.name)) {
        throw new DrError('E_INVALID_INPUT', `process host: host "${host.name}" is defined twice`, { host: host.name })
      }
      const tags = [...(host.tags ?? [])]
      const policies = host.policies === undefined ? undefined : { ...host.policies }
      this.#hosts.set(host.name, { name: host.name, online: host.online ?? true, cpus: host.cpus, memoryMb: host.memoryMb, tags, policies })
    }
  }

  /** Every host name, sorted. */
  names(): string[] {
    return [...this.#hosts.keys()].sort()
  }

  /** The protection policies configured for host `name` (undefined: none); `E_NOT_FOUND` if unknown. */
  policies(name: string): HostPolicies | undefined {
    const policies = this.#host(name).policies
    return policies === undefined ? undefined : { ...policies }
  }

  /** Host `name` with what `allocations` take from it; `E_NOT_FOUND` if unknown. */
  info(name: string, allocations: Iterable<Allocation>): HostInfo {
    const host = this.#host(name)
    let allocatedCpus = 0
    let allocatedMemoryMb = 0
    for (const allocation of allocations) {
      if (allocation.host !== name) continue
      allocatedCpus += allocation.cpus
      allocatedMemoryMb += allocation.memoryMb
    }
    return { name: host.name, online: host.online, cpus: host.cpus, memoryMb: host.memoryMb, tags: [...host.tags], allocatedCpus, allocatedMemoryMb }
  }

  #host(name: string): HostRecord {
    const host = this.#hosts.get(name)
    if (host === undefined) throw new DrError('E_NOT_FOUND', `process host: no host "${name}"`, { adapter: 'process', host: name })
    return host
  }
}

import { mkdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { DrError } from '../../kernel/errors.js'
import type { FenceGuard } from '../../kernel/fencing.js'
import type { MountInfo } from '../../ports/host.js'
import { hasErrorCode } from '../fs/durable-io.js'
import { HostRegistry, type HostRegistryState } from './host-registry.js'

/** What the registry keeps beside the mounts and fences: the VMs and the idempotency keys. */
export type VmRegistryState = Pick<HostRegistryState, 'vms' | 'registered' | 'started'>

/** The key a mount path is known by: normalised, without a trailing slash. */
function mountKey(mountPath: string): string {
  const normal = path.posix.normalize(mountPath)
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal
}

function copyMount(mount: MountInfo): MountInfo {
  return { path: mount.path, volume: mount.volume, identity: mount.identity, options: { ...mount.options }, readOnly: mount.readOnly }
}

/**
 * Resolves a path as the host's applications know it (`/data`) to the path on this machine, under `rootDir`
 * (`/` keeps it as it is). `..` cannot climb out of `rootDir`.
 */
export function hostPath(rootDir: string, appPath: string): string {
  return path.join(rootDir, path.posix.normalize(`/${appPath}`))
}

/** Creates a directory at `target` unless something (a directory or a file) is there already. */
export async function ensurePath(target: string): Promise<void> {
  try {
    await stat(target)
  } catch (error) {
    if (!hasErrorCode(error, 'ENOENT')) throw error
    await mkdir(target, { recursive: true })
  }
}

/**
 * The mounts of a process host and its registry on disk (mounts, fence tokens, and the VM state `vms` provides).
 * A mount is a record in the registry plus the directory it names (created if missing, left in place on
 * dismount). Changes run one at a time and are on disk before they are visible.
 */
export class MountTable {
  readonly #registry: HostRegistry
  readonly #guard: FenceGuard
  readonly #rootDir: string
  readonly #vms: () => VmRegistryState
  #mounts = new Map<string, MountInfo>()
  #queue: Promise<void> = Promise.resolve()

  constructor(workDir: string, rootDir: string, guard: FenceGuard, vms: () => VmRegistryState) {
    this.#registry = new HostRegistry(workDir)
    this.#rootDir = rootDir
    this.#guard = guard
    this.#vms = vms
  }

  /** Loads the registry: its mounts, its fence tokens into the guard; resolves with the VM state it holds. */
  async load(): Promise<VmRegistryState> {
    const state = await this.#registry.load()
    this.#mounts = new Map(state.mounts.map((mount) => [mountKey(mount.path), copyMount(mount)]))
    this.#guard.restore(state.fences)
    return { vms: state.vms, registered: state.registered, started: state.started }
  }

  /** Saves the registry as it is now (after the guard accepted a higher token, or the VM state changed). */
  save(): Promise<void> {
    return this.#serially(() => this.#save(this.#mounts))
  }

  /**
   * Mounts `mount`; `E_CONFLICT` when its path is taken. `prepare` runs on the mount's directory once the path is
   * known to be free and before the mount is recorded (a failure records nothing).
   */
  mount(mount: MountInfo, prepare: (dir: string) => Promise<void>): Promise<MountInfo> {
    return this.#serially(async () => {
      const key = mountKey(mount.path)
      const taken = this.#mounts.get(key)
      if (taken !== undefined) {
        throw new DrError('E_CONFLICT', `process host: "${mount.path}" is taken by volume "${taken.volume}"`, {
          adapter: 'process',
          path: mount.path,
          volume: taken.volume,
        })
      }
      await ensurePath(hostPath(this.#rootDir, key))
      await prepare(hostPath(this.#rootDir, key))
      const next = new Map(this.#mounts)
      next.set(key, copyMount(mount))
      await this.#save(next)
      this.#mounts = next
      return copyMount(mount)
    })
  }

  /**
   * Dismounts whatever is at `mountPath` (nothing there: nothing to do). `release` runs on the mount and its
   * directory before the mount is removed (a failure leaves it mounted).
   */
  dismount(mountPath: string, release: (mount: MountInfo, dir: string) => Promise<void>): Promise<void> {
    return this.#serially(async () => {
      const key = mountKey(mountPath)
      const mount = this.#mounts.get(key)
      if (mount === undefined) return
      await release(copyMount(mount), hostPath(this.#rootDir, key))
      const next = new Map(this.#mounts)
      next.delete(key)
      await this.#save(next)
      this.#mounts = next
    })
  }

  /** The mount at `mountPath`, if any. */
  get(mountPath: string): MountInfo | undefined {
    const mount = this.#mounts.get(mountKey(mountPath))
    return mount === undefined ? undefined : copyMount(mount)
  }

  /** Every mount, sorted by path. */
  list(): MountInfo[] {
    return [...this.#mounts.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map(copyMount)
  }

  /** Resolves when every change started so far is on disk. */
  async settled(): Promise<void> {
    await this.#queue
  }

  #save(mounts: ReadonlyMap<string, MountInfo>): Promise<void> {
    return this.#registry.save({ mounts: [...mounts.values()], fences: this.#guard.entries(), ...this.#vms() })
  }

  #serially<R>(run: () => Promise<R>): Promise<R> {
    const result = this.#queue.then(run)
    this.#queue = result.then(
      () => undefined,
      () => undefined,
    )
    return result
  }
}

import { mkdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { DrError } from '../../kernel/errors.js'
import type { FenceGuard } from '../../kernel/fencing.js'
import type { MountInfo } from '../../ports/host.js'
import { hasErrorCode } from '../fs/durable-io.js'
import { HostRegistry } from './host-registry.js'

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
 * The mounts of a process host and its persisted fence tokens. A mount is a record in the registry plus the
 * directory it names (created if missing, left in place on dismount). Changes run one at a time and are on disk
 * before they are visible.
 */
export class MountTable {
  readonly #registry: HostRegistry
  readonly #guard: FenceGuard
  readonly #rootDir: string
  #mounts = new Map<string, MountInfo>()
  #queue: Promise<void> = Promise.resolve()

  constructor(workDir: string, rootDir: string, guard: FenceGuard) {
    this.#registry = new HostRegistry(workDir)
    this.#rootDir = rootDir
    this.#guard = guard
  }

  /** Loads the registry: its mounts, and its fence tokens into the guard. */
  async load(): Promise<void> {
    const state = await this.#registry.load()
    this.#mounts = new Map(state.mounts.map((mount) => [mountKey(mount.path), copyMount(mount)]))
    this.#guard.restore(state.fences)
  }

  /** Saves the guard's tokens (after it accepted a higher one). */
  saveFences(): Promise<void> {
    return this.#serially(() => this.#save(this.#mounts))
  }

  /** Mounts `mount`; `E_CONFLICT` when its path is taken. */
  mount(mount: MountInfo): Promise<MountInfo> {
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
      const next = new Map(this.#mounts)
      next.set(key, copyMount(mount))
      await this.#save(next)
      this.#mounts = next
      return copyMount(mount)
    })
  }

  /** Dismounts whatever is at `mountPath` (nothing there: nothing to do). */
  dismount(mountPath: string): Promise<void> {
    return this.#serially(async () => {
      const key = mountKey(mountPath)
      if (!this.#mounts.has(key)) return
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
    return this.#registry.save({ mounts: [...mounts.values()], fences: this.#guard.entries() })
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

import * as t from 'io-ts'
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import path from 'node:path'
import { isRight } from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { MountInfo, VmInfo, VmSpec } from '../../ports/host.js'
import { hasErrorCode, syncDirectory } from '../fs/durable-io.js'
import { MountInfoCodec, VmInfoCodec, VmSpecCodec } from '../../ports/host-codecs.js'

/** The registry file of a process host, in its work directory. */
const REGISTRY_FILE = 'process-host.json'

/** A VM as the registry keeps it: its spec and the host it is registered on (a restarted host has it off). */
export interface RegisteredVm {
  readonly spec: VmSpec
  readonly host: string
}

/**
 * What a process host keeps across restarts: its mounts, the highest fence token seen per scope, its registered
 * VMs, and the idempotency keys of the registrations (with what they resolved with) and power-ons that succeeded.
 */
export interface HostRegistryState {
  readonly mounts: readonly MountInfo[]
  readonly fences: ReadonlyArray<readonly [string, number]>
  readonly vms: readonly RegisteredVm[]
  readonly registered: ReadonlyArray<readonly [string, VmInfo]>
  readonly started: readonly string[]
}

const Fences = t.array(t.tuple([t.string, t.number]))

/** Version 1 (mounts and fences only) is still read; saves write version 2. */
const RegistryCodec = t.union(
  [
    t.type({ version: t.literal(1), mounts: t.array(MountInfoCodec), fences: Fences }),
    t.type({
      version: t.literal(2),
      mounts: t.array(MountInfoCodec),
      fences: Fences,
      vms: t.array(t.type({ spec: VmSpecCodec, host: t.string })),
      registered: t.array(t.tuple([t.string, VmInfoCodec])),
      started: t.array(t.string),
    }),
  ],
  'ProcessHostRegistry',
)

/**
 * The small JSON registry of a process host (mounts, fence tokens, VMs, idempotency keys). Each save writes a temporary file, fsyncs it, renames it into
 * place and fsyncs the directory, so the registry on disk is always either the old or the new one.
 */
export class HostRegistry {
  readonly #dir: string
  readonly #file: string

  constructor(dir: string) {
    this.#dir = dir
    this.#file = path.join(dir, REGISTRY_FILE)
  }

  /** Reads the registry (empty when there is none yet); `E_CORRUPT` when it cannot be trusted. */
  async load(): Promise<HostRegistryState> {
    await mkdir(this.#dir, { recursive: true })
    let text: string
    try {
      text = await readFile(this.#file, 'utf8')
    } catch (error) {
      if (hasErrorCode(error, 'ENOENT')) return { mounts: [], fences: [], vms: [], registered: [], started: [] }
      throw error
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (error) {
      throw this.#corrupt('it is not JSON', error)
    }
    const decoded = RegistryCodec.decode(parsed)
    if (!isRight(decoded)) throw this.#corrupt('it does not match the registry format', undefined)
    const state = decoded.right
    if (state.version === 1) return { mounts: state.mounts, fences: state.fences, vms: [], registered: [], started: [] }
    return { mounts: state.mounts, fences: state.fences, vms: state.vms, registered: state.registered, started: state.started }
  }

  /** Saves `state` durably. The caller runs one save at a time. */
  async save(state: HostRegistryState): Promise<void> {
    const body = JSON.stringify({ version: 2, ...state }, null, 2)
    const temp = `${this.#file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    const handle = await open(temp, 'wx')
    try {
      await handle.writeFile(body, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await rename(temp, this.#file)
    } catch (error) {
      await unlink(temp).catch(() => undefined)
      throw error
    }
    await syncDirectory(this.#dir)
  }

  #corrupt(reason: string, cause: unknown): DrError {
    return new DrError(
      'E_CORRUPT',
      `process host: registry ${this.#file} is damaged: ${reason}`,
      { adapter: 'process', file: this.#file },
      { cause },
    )
  }
}

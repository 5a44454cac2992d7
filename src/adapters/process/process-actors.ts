import { DrError } from '../../kernel/errors.js'
import type { IoActor } from '../../ports/host.js'
import { ProcessGroup } from './process-group.js'
import type { ProcessActorOptions, ProcessExit } from './types.js'

interface ActorRecord {
  readonly id: string
  readonly volumes: readonly string[]
  readonly group: ProcessGroup
}

/** The public face of a process actor. */
function actorInfo(actor: ActorRecord): IoActor {
  return { id: actor.id, kind: 'process', volumes: [...actor.volumes], frozen: actor.group.frozen, pid: actor.group.pid }
}

/**
 * The plain application processes a process host started as I/O actors: each in its own process group, listed
 * while it runs, and remembered after it exits so that its exit can still be asked for.
 */
export class ProcessActors {
  readonly #running = new Map<string, ActorRecord>()
  readonly #exits = new Map<string, Promise<ProcessExit>>()
  readonly #starting = new Set<string>()

  /** True while actor `id` is starting or running. */
  has(id: string): boolean {
    return this.#starting.has(id) || this.group(id) !== undefined
  }

  /**
   * Starts actor `options` (with the host's environment, `options.env` and `DRKIT_ACTOR_ID`; no stdio).
   * `E_CONFLICT` if an actor of that id is starting or running; otherwise rejects with the spawn error.
   */
  async start(options: ProcessActorOptions): Promise<IoActor> {
    if (this.has(options.id)) {
      throw new DrError('E_CONFLICT', `process host: actor "${options.id}" exists already`, { adapter: 'process', actor: options.id })
    }
    this.#starting.add(options.id)
    let group: ProcessGroup
    try {
      group = await ProcessGroup.start({
        command: options.command,
        args: options.args,
        env: { ...process.env, ...options.env, DRKIT_ACTOR_ID: options.id },
        stdio: 'ignore',
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      })
    } finally {
      this.#starting.delete(options.id)
    }
    const record: ActorRecord = { id: options.id, volumes: [...options.volumes], group }
    this.#running.set(options.id, record)
    this.#exits.set(options.id, group.exited)
    void group.exited.then(() => {
      if (this.#running.get(options.id) === record) this.#running.delete(options.id)
    })
    return actorInfo(record)
  }

  /** The process group of running actor `id`, if there is one. */
  group(id: string): ProcessGroup | undefined {
    const actor = this.#running.get(id)
    return actor !== undefined && actor.group.running ? actor.group : undefined
  }

  /** How actor `id` ended or will end; undefined if it was never started. */
  exit(id: string): Promise<ProcessExit> | undefined {
    return this.#exits.get(id)
  }

  /** The running actors doing I/O to `volume`. */
  list(volume: string): IoActor[] {
    return [...this.#running.values()].filter((actor) => actor.group.running && actor.volumes.includes(volume)).map(actorInfo)
  }

  /** The process group of every running actor. */
  groups(): ProcessGroup[] {
    return [...this.#running.values()].map((actor) => actor.group)
  }
}

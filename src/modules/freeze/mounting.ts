import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { MountInfo } from '../../ports/host.js'
import type { FreezeContext } from './context.js'
import { retrying } from './retrying.js'
import type { ProtectionRecord } from './state.js'

/**
 * True when `mount` is the protected volume's mount: its identity, and the volume itself or the one backing it now.
 *
 * @public
 */
export function mountMatches(mount: MountInfo, record: ProtectionRecord): boolean {
  return mount.identity === record.identity && (mount.volume === record.activeVolume || mount.volume === record.volume)
}

/**
 * The mount of a protected volume as captured before its dismount (seed 004, F5-1): the mount as the host shows
 * it (else as configured, e.g. for a volume that is dismounted already) and what each registered mount hook keeps
 * with it, by hook name.
 *
 * @public
 */
export interface CapturedMount {
  readonly mount: MountInfo
  readonly hooks: Readonly<Record<string, Json>>
}

/**
 * Captures the mount of `record` (read-only: nothing changes).
 *
 * @public
 */
export async function captureMount(ctx: FreezeContext, record: ProtectionRecord): Promise<CapturedMount> {
  const host = ctx.host(record.site)
  const found = await retrying(ctx.clock, () => callAdapter(host.kind, 'getMount', () => host.getMount(record.mountPath)))
  const mount: MountInfo =
    found !== undefined && mountMatches(found, record)
      ? found
      : { path: record.mountPath, volume: record.activeVolume, identity: record.identity, options: record.mountOptions, readOnly: record.readOnly }
  const hooks: Record<string, Json> = {}
  for (const hook of ctx.hooks) {
    hooks[hook.name] = await callAdapter(`hook ${hook.name}`, 'capture', () => hook.capture({ site: record.site, volume: record.volume, mount }))
  }
  return { mount: { ...mount, options: { ...mount.options } }, hooks }
}

/**
 * Mounts the protected volume at its path with its identity, options and read-only flag, unless it is mounted
 * there already (idempotent). A path held by anything else is `E_CONFLICT` (never another path).
 *
 * @public
 */
export async function ensureMounted(ctx: FreezeContext, record: ProtectionRecord): Promise<MountInfo> {
  const host = ctx.host(record.site)
  const found = await callAdapter(host.kind, 'getMount', () => host.getMount(record.mountPath))
  if (found !== undefined) {
    if (mountMatches(found, record)) return found
    throw new DrError('E_CONFLICT', `mount path "${record.mountPath}" of site "${record.site}" is taken by volume "${found.volume}"`, {
      site: record.site,
      mountPath: record.mountPath,
      volume: found.volume,
    })
  }
  const mount: MountInfo = { path: record.mountPath, volume: record.activeVolume, identity: record.identity, options: { ...record.mountOptions }, readOnly: record.readOnly }
  return callAdapter(host.kind, 'mount', () => host.mount(mount, ctx.token()))
}

/**
 * Remounts after a restore: `toVolume` at the captured path, with the captured identity and options, checks that
 * the host mounted exactly that (one host call; a path found taken is looked at once more, since a mount this
 * restore made before a crash counts) and gives the embedder's hooks their saved configuration back. If the path is
 * taken by something else, or the host shows another identity, it emits `freeze.remountFailed` and rejects with
 * `E_CONFLICT`: the volume is never mounted elsewhere. Idempotent.
 *
 * @public
 */
export async function remountVolume(
  ctx: FreezeContext,
  record: ProtectionRecord,
  captured: CapturedMount,
  toVolume: string,
  restoreId: string,
): Promise<MountInfo> {
  const host = ctx.host(record.site)
  const wanted: MountInfo = { ...captured.mount, volume: toVolume, options: { ...captured.mount.options } }
  let found: MountInfo | undefined
  try {
    found = await retrying(ctx.clock, () => callAdapter(host.kind, 'mount', () => host.mount(wanted, ctx.token())))
  } catch (thrown) {
    const error = toDrError(thrown)
    if (error.code !== 'E_CONFLICT') throw error
    // Taken: by this restore before a crash (or a lost reply), or by someone else.
    found = await retrying(ctx.clock, () => callAdapter(host.kind, 'getMount', () => host.getMount(wanted.path)))
  }
  if (found === undefined || found.path !== wanted.path || found.volume !== wanted.volume || found.identity !== wanted.identity || !sameOptions(found, wanted)) {
    const message = found === undefined ? `volume ${wanted.volume} is not mounted at "${wanted.path}"` : `"${wanted.path}" is mounted with volume "${found.volume}" and identity "${found.identity}"`
    reportRemountFailed(ctx, record, restoreId, wanted, found, message)
    throw new DrError('E_CONFLICT', `volume ${record.site}/${record.volume} cannot be remounted with its identity: ${message}`, { mountPath: wanted.path })
  }
  for (const hook of ctx.hooks) {
    const saved = captured.hooks[hook.name]
    if (hook.apply === undefined || saved === undefined) continue
    await callAdapter(`hook ${hook.name}`, 'apply', () => (hook.apply as NonNullable<typeof hook.apply>)({ site: record.site, volume: record.volume, mount: found, saved }))
  }
  return found
}

/**
 * Puts the mount back as it was before a restore that failed: nothing to do when the volume (or its restored
 * replacement) is mounted at its path with its identity; a path someone else took, or a host that refuses the
 * mount, is reported (`freeze.remountFailed`, critical) rather than thrown, so that the lock is still released and
 * the actors still thawed.
 *
 * @public
 */
export async function restoreOriginalMount(ctx: FreezeContext, record: ProtectionRecord, original: MountInfo, restoreId: string): Promise<void> {
  const host = ctx.host(record.site)
  const report = (found: MountInfo | undefined, message: string): void => reportRemountFailed(ctx, record, restoreId, original, found, message)
  try {
    const found = await retrying(ctx.clock, () => callAdapter(host.kind, 'getMount', () => host.getMount(original.path)))
    if (found === undefined) {
      await retrying(ctx.clock, () => callAdapter(host.kind, 'mount', () => host.mount({ ...original, options: { ...original.options } }, ctx.token())))
    } else if (!mountMatches(found, record)) {
      report(found, `"${original.path}" is taken by volume "${found.volume}"; the original volume stays dismounted`)
    }
  } catch (thrown) {
    report(undefined, `the original volume could not be mounted again: ${toDrError(thrown).message}`)
  }
}

function reportRemountFailed(ctx: FreezeContext, record: ProtectionRecord, restoreId: string, expected: MountInfo, found: MountInfo | undefined, message: string): void {
  ctx.events.emit('freeze.remountFailed', 'critical', {
    site: record.site,
    volume: record.volume,
    restoreId,
    mountPath: expected.path,
    expected: { volume: expected.volume, identity: expected.identity },
    found: found === undefined ? null : { volume: found.volume, identity: found.identity },
    message,
  })
}

function sameOptions(a: MountInfo, b: MountInfo): boolean {
  const keys = new Set([...Object.keys(a.options), ...Object.keys(b.options)])
  return a.readOnly === b.readOnly && [...keys].every((key) => a.options[key] === b.options[key])
}

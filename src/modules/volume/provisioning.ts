import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { ConstituentIo } from './constituent-io.js'
import { formatData } from './data-log.js'
import { CONSTITUENT_BLOCK_SIZE, locatorVolumeBytes, namespaceVolumeBytes } from './layout.js'
import { formatLocators } from './locator-table.js'
import { formatNamespace } from './namespace-table.js'
import type { ConstituentRole, VolumeGeometry } from './state.js'

/**
 * The configuration record every constituent volume carries: which expandable volume it belongs to, its role
 * and ordinal, and the membership change that created it. It makes a constituent self-describing for
 * replication and lets a replayed create recognise the volumes it made.
 *
 * @public
 */
export const MEMBER_CONFIG_KEY = 'drkit.volume.member'

/**
 * One constituent to provision: its storage volume, role and ordinal.
 *
 * @public
 */
export interface ConstituentSpec {
  readonly volume: string
  readonly role: ConstituentRole
  readonly ordinal: number
}

/** The size of a constituent with `role` under `geometry`. */
export function constituentBytes(role: ConstituentRole, geometry: VolumeGeometry): number {
  if (role === 'namespace') return namespaceVolumeBytes(geometry.namespaceSlots)
  if (role === 'ols') return locatorVolumeBytes(geometry.objectIds)
  return geometry.dataSizeBytes
}

function memberConfig(ev: string, spec: ConstituentSpec, change: string): Json {
  return { volume: ev, role: spec.role, ordinal: spec.ordinal, change }
}

function configChange(config: Json | undefined): string | undefined {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return undefined
  const change = (config as { readonly [key: string]: Json })['change']
  return typeof change === 'string' ? change : undefined
}

/**
 * Creates one constituent volume, tags it with its member record and writes its empty header. Idempotent for the
 * change that creates it: a volume already tagged by `change` — or created but not yet tagged and still empty —
 * is adopted; any other existing volume of that name is `E_CONFLICT`.
 *
 * @public
 */
export async function provisionConstituent(io: ConstituentIo, ev: string, spec: ConstituentSpec, geometry: VolumeGeometry, change: string): Promise<void> {
  const { storage } = io
  try {
    await callAdapter(storage.kind, 'createVolume', () =>
      storage.createVolume({ name: spec.volume, sizeBytes: constituentBytes(spec.role, geometry), blockSize: CONSTITUENT_BLOCK_SIZE }, io.token()),
    )
  } catch (error) {
    if (!isDrError(error, 'E_CONFLICT')) throw error
    if (!(await createdBy(io, spec.volume, change))) {
      throw new DrError('E_CONFLICT', `storage volume "${spec.volume}" already exists and is not part of "${ev}"`, { volume: spec.volume, ev })
    }
  }
  await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(spec.volume, MEMBER_CONFIG_KEY, memberConfig(ev, spec, change), io.token()))
  if (spec.role === 'namespace') await formatNamespace(io, spec.volume, geometry.namespaceSlots)
  else if (spec.role === 'ols') await formatLocators(io, spec.volume, geometry.objectIds)
  else await formatData(io, spec.volume, spec.ordinal)
}

/**
 * True when `volume` was created by membership change `change`: it carries the change's member record, or it
 * carries none and is still empty (created, then the coordinator stopped before tagging it). Callers check
 * before a change starts that its volume names are free, so an untagged empty volume is the change's own.
 */
async function createdBy(io: ConstituentIo, volume: string, change: string): Promise<boolean> {
  const { storage } = io
  const tagged = configChange(await callAdapter(storage.kind, 'getConfig', () => storage.getConfig(volume, MEMBER_CONFIG_KEY)))
  if (tagged !== undefined) return tagged === change
  return (await callAdapter(storage.kind, 'volumeInfo', () => storage.volumeInfo(volume))).allocatedBytes === 0
}

/**
 * Deletes one constituent volume; one that does not exist is already gone. With `onlyChange`, only a volume
 * created by that change is deleted (rolling back a create or an expand never touches anything else).
 *
 * @public
 */
export async function destroyConstituent(io: ConstituentIo, volume: string, onlyChange?: string): Promise<void> {
  const { storage } = io
  try {
    if (onlyChange !== undefined && !(await createdBy(io, volume, onlyChange))) return
    await callAdapter(storage.kind, 'deleteVolume', () => storage.deleteVolume(volume, io.token()))
  } catch (error) {
    if (!isDrError(error, 'E_NOT_FOUND')) throw error
  }
}

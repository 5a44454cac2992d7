import { DrError, callAdapter } from '../../kernel/errors.js'
import { findLink, resolveInState } from './decide-tree.js'
import { policyByName } from './decide-protection.js'
import type { ProtectOptions } from './inputs.js'
import type { NamespaceRuntime } from './runtime.js'
import type { Protection } from './state.js'
import * as E from 'fp-ts/lib/Either.js'

/**
 * Builds the protection record of `namespace.protect` after checking what needs I/O: the link and policy exist,
 * the mirror exists (`E_NOT_FOUND` otherwise), the primary share exists on its site and lives on the mirror's
 * current source volume (`E_PRECONDITION` otherwise), and the destination share name is not already a share of
 * another volume on the destination site (`E_CONFLICT`).
 *
 * @public
 */
export async function buildProtection(rt: NamespaceRuntime, input: ProtectOptions): Promise<Protection> {
  const state = rt.catalog.state
  const link = findLink(state, input.namespace, input.path)
  if (E.isLeft(link)) throw link.left
  const policy = policyByName(state, input.policy)
  if (E.isLeft(policy)) throw policy.left
  const primaryRef = input.primary ?? activeTarget(rt, input.namespace, input.path)
  const mirror = await rt.mirrors.describe(input.mirrorId)
  const storage = rt.storage(primaryRef.site)
  const share = await callAdapter(storage.kind, 'getShare', () => storage.getShare(primaryRef.share))
  if (share === undefined) {
    throw new DrError('E_PRECONDITION', `primary share ${primaryRef.site}/${primaryRef.share} does not exist`, { site: primaryRef.site, share: primaryRef.share })
  }
  if (mirror.source.site !== primaryRef.site || mirror.source.volume !== share.volume) {
    throw new DrError(
      'E_PRECONDITION',
      `share ${primaryRef.site}/${primaryRef.share} is on volume "${share.volume}", not on the source of mirror "${input.mirrorId}" (${mirror.source.site}/${mirror.source.volume})`,
      { mirrorId: input.mirrorId, site: primaryRef.site, share: primaryRef.share },
    )
  }
  const destination = { site: mirror.destination.site, share: input.destinationShare, volume: mirror.destination.volume }
  const dstStorage = rt.storage(destination.site)
  const existing = await callAdapter(dstStorage.kind, 'getShare', () => dstStorage.getShare(destination.share))
  if (existing !== undefined && existing.volume !== destination.volume) {
    throw new DrError('E_CONFLICT', `share ${destination.site}/${destination.share} exports volume "${existing.volume}", not the mirror's destination "${destination.volume}"`, {
      site: destination.site,
      share: destination.share,
    })
  }
  return {
    policy: policy.right.id,
    mirrorId: input.mirrorId,
    primary: { site: primaryRef.site, share: share.name, volume: share.volume, path: share.path, protocol: share.protocol, access: [...share.access] },
    destination,
    state: 'protected',
    since: rt.clock.now(),
    workflowId: null,
    lastError: null,
  }
}

function activeTarget(rt: NamespaceRuntime, namespace: string, path: string): { site: string; share: string } {
  const resolved = resolveInState(rt.catalog.state, namespace, path)
  if (E.isLeft(resolved)) throw resolved.left
  return { site: resolved.right.target.site, share: resolved.right.target.share }
}

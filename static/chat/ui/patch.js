/**
 * Keyed re-rendering without replacing what did not change: a node is rebuilt only when
 * its signature changed, and a parent's children are moved into place rather than
 * replaced, so a click in progress (mousedown, then mouseup on the same element) and
 * the layout of unchanged parts survive a re-render.
 * @module ui/patch
 */

/** A cache of nodes by key, each rebuilt only when its signature changes. */
export class NodeCache {
  constructor() {
    this.nodes = new Map();
    this.used = new Set();
  }

  /** The node for `key`: the cached one if its signature is `sig`, else `make()`. */
  get(key, sig, make) {
    let node = this.nodes.get(key);
    if (!node || node.dataset.sig !== sig) {
      node = make();
      node.dataset.sig = sig;
      this.nodes.set(key, node);
    }
    this.used.add(key);
    return node;
  }

  /** Forget the nodes not asked for since the last call. */
  sweep() {
    for (const key of [...this.nodes.keys()]) if (!this.used.has(key)) this.nodes.delete(key);
    this.used.clear();
  }
}

/** Make `el`'s children exactly `nodes`, moving and inserting only where they differ. */
export function patchChildren(el, nodes) {
  for (let i = 0; i < nodes.length; i += 1) {
    const current = el.children[i];
    if (current !== nodes[i]) el.insertBefore(nodes[i], current ?? null);
  }
  while (el.children.length > nodes.length) el.lastElementChild.remove();
}
